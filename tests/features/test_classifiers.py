import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from keras_tl.features import classifiers, full_network_embedding as fne


def _blobs(per_class, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[3.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 3.0]])
    x = np.concatenate([centre + rng.normal(scale=0.5, size=(per_class, 3)) for centre in centres])
    return x.astype("float32"), np.repeat(np.arange(3), per_class)


def test_fit_evaluate_reports_accuracy_confusion_and_per_class_scores():
    train_x, train_y = _blobs(20)
    test_x, test_y = _blobs(10, seed=1)
    test_y = test_y.copy()
    test_y[0] = 1  # one deliberately wrong label: a class-0 point called class 1
    result = classifiers.fit_evaluate(classifiers.make_classifier(), train_x, train_y, test_x, test_y, ["a", "b", "c"])
    assert result["accuracy"] == pytest.approx(29 / 30)
    assert result["confusion_matrix"].tolist() == [[9, 0, 0], [1, 10, 0], [0, 0, 10]]
    assert result["report"]["b"]["recall"] == pytest.approx(10 / 11)
    assert result["images"] == 30 and result["accuracy_interval"] == pytest.approx(classifiers.wilson_interval(29, 30))
    assert result["per_class"]["b"]["images"] == 11 and result["per_class"]["b"]["accuracy"] == pytest.approx(10 / 11)
    assert result["per_class"]["a"]["accuracy_interval"] == [pytest.approx(9 / (9 + 1.96 ** 2), abs=1e-4), 1.0]


def test_wilson_interval_against_hand_computed_values_and_at_both_ends():
    # 8 of 10: centre (0.8 + 1.96²/20) / (1 + 1.96²/10) = 0.7167,
    # half-width 1.96 / 1.3842 * sqrt(0.8 * 0.2 / 10 + 1.96² / 400) = 0.2266
    assert classifiers.wilson_interval(8, 10) == pytest.approx((0.490, 0.943), abs=5e-4)
    for total in (1, 2, 43):  # at 0/n and n/n the interval ends at 0 or 1 and reaches z² / (n + z²) inwards
        assert classifiers.wilson_interval(0, total) == (0.0, pytest.approx(1.96 ** 2 / (total + 1.96 ** 2), abs=1e-4))
        assert classifiers.wilson_interval(total, total) == (pytest.approx(total / (total + 1.96 ** 2), abs=1e-4), 1.0)
    assert classifiers.wilson_interval(39, 43) == pytest.approx((0.784, 0.963), abs=5e-4)
    wide, narrow = classifiers.wilson_interval(8, 10), classifiers.wilson_interval(80, 100)
    assert narrow[1] - narrow[0] < (wide[1] - wide[0]) / 2.5  # ten times the images: about sqrt(10) times narrower
    assert classifiers.wilson_interval(8, 10, confidence=0.99)[0] < wide[0]
    assert classifiers.format_accuracy(39 / 43, classifiers.wilson_interval(39, 43)) == "0.907 [0.78, 0.96]"
    for correct, total in ((3, 2), (0, 0), (-1, 4)):
        with pytest.raises(ValueError, match=f"got correct={correct}, total={total}"):
            classifiers.wilson_interval(correct, total)


def test_per_class_rows_hold_only_the_classes_with_test_images():
    result = classifiers.evaluate_predictions([0, 0, 1], [0, 1, 1], ["cat", "dog", "fish"])
    assert list(result["per_class"]) == ["cat", "dog"]  # no fish among the test images
    assert result["per_class"]["cat"] == {"accuracy": 0.5, "images": 2,
                                          "accuracy_interval": pytest.approx(classifiers.wilson_interval(1, 2))}


def test_pipeline_steps_and_c_search_on_train_only():
    classifier = classifiers.make_classifier(fne.postprocessor("fne"), c=0.5)
    assert isinstance(classifier, Pipeline) and classifier.named_steps["svm"].C == 0.5
    assert isinstance(classifier.named_steps["postprocess"], fne.FNETransformer)
    search = classifiers.make_classifier(fne.postprocessor("l2"), search_c=True)
    assert isinstance(search, GridSearchCV)
    train_x, train_y = _blobs(12)
    result = classifiers.fit_evaluate(search, train_x, train_y, *_blobs(5, seed=3), ["a", "b", "c"])
    assert result["chosen_c"] in classifiers.C_GRID and result["accuracy"] == 1.0
    with pytest.raises(ValueError, match="Unknown post-processing 'l3'"):
        fne.postprocessor("l3")


def test_few_shot_uses_k_images_per_class_and_reports_mean_and_std():
    train_x, train_y = _blobs(30)
    test_x, test_y = _blobs(10, seed=4)
    curve = classifiers.few_shot(classifiers.make_classifier(), train_x, train_y, test_x, test_y, shots=[1, 5],
                              repeats=3, verbose=False)
    assert sorted(curve) == [1, 5]
    for entry in curve.values():
        assert len(entry["accuracies"]) == 3
        assert entry["mean"] == pytest.approx(np.mean(entry["accuracies"]))
        assert entry["std"] == pytest.approx(np.std(entry["accuracies"]))
    assert curve[5]["mean"] >= 0.9


def test_row_space_fit_is_the_same_classifier_on_fewer_columns():
    """Fewer images than features: LinearSVC in the span of the training rows takes the same dual steps."""
    rng = np.random.default_rng(0)
    train_x, test_x = rng.normal(size=(30, 500)), rng.normal(size=(10, 500))
    train_y = np.repeat(np.arange(3), 10)
    plain = classifiers.make_classifier(fne.postprocessor("standardise")).fit(train_x, train_y)
    rotated = classifiers.make_classifier(fne.postprocessor("standardise"), row_space=True).fit(train_x, train_y)
    assert rotated.named_steps["row_space"].transform(test_x).shape == (10, 30)
    np.testing.assert_allclose(rotated.decision_function(test_x), plain.decision_function(test_x), atol=1e-9)
    assert plain.named_steps["svm"].n_iter_ == rotated.named_steps["svm"].n_iter_


# ----------------------------------------------------------------------------- heads beyond the linear SVM


@pytest.mark.parametrize("name", sorted(classifiers.CLASSIFIERS))
def test_every_head_fits_and_predicts_separable_features(name):
    """Each head of the slides' advice learns 3 well-separated blobs: predictions of the right shape,
    accuracy twice chance (1/3) or better, scores per class from decision_function or predict_proba."""
    train_x, train_y = _blobs(12)
    test_x, test_y = _blobs(6, seed=5)
    classifier = classifiers.make_classifier(fne.postprocessor("standardise"), classifier=name, seed=0)
    assert isinstance(classifier, Pipeline) and classifier.steps[0][0] == "postprocess"
    classifier.fit(train_x, train_y)
    predicted = classifier.predict(test_x)
    assert predicted.shape == (18,) and set(predicted) <= {0, 1, 2}
    assert np.mean(predicted == test_y) >= 2 / 3
    scores = getattr(classifier, "decision_function" if name in ("linear-svm", "logistic", "rbf-svm")
                     else "predict_proba")(test_x)
    assert scores.shape == (18, 3) and np.mean(scores.argmax(axis=1) == predicted) == 1.0


def test_heads_are_seeded_and_c_reaches_the_heads_that_have_one():
    train_x, train_y = _blobs(12)
    first, second = (classifiers.make_classifier(classifier="mlp", seed=3).fit(train_x, train_y) for _ in range(2))
    np.testing.assert_array_equal(first.predict_proba(train_x), second.predict_proba(train_x))
    assert classifiers.make_classifier(classifier="logistic", c=0.25).named_steps["logistic"].C == 0.25
    assert classifiers.make_classifier(classifier="rbf-svm", c=4.0).named_steps["rbf_svm"].C == 4.0
    search = classifiers.make_classifier(classifier="logistic", search_c=True)
    result = classifiers.fit_evaluate(search, train_x, train_y, *_blobs(5, seed=3), ["a", "b", "c"])
    assert result["chosen_c"] in classifiers.C_GRID and result["accuracy"] == 1.0


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # max_iter=20: on purpose
def test_mlp_early_stops_on_at_least_one_validation_image_per_class():
    """2 images per class: MLPClassifier's 20 % would hold out fewer images than classes; one per class is kept."""
    train_x, train_y = _blobs(2)
    mlp = classifiers.EarlyStoppedMLP(validation_fraction=0.1).fit(train_x, train_y)
    assert mlp.network_.early_stopping and mlp.network_.validation_fraction == pytest.approx(0.5)
    assert len(mlp.network_.validation_scores_) == mlp.network_.n_iter_
    single = classifiers.EarlyStoppedMLP(max_iter=20).fit(train_x[::2], train_y[::2])  # one image per class
    assert not single.network_.early_stopping and single.predict(train_x).shape == (6,)


@pytest.mark.parametrize("kwargs, message", [
    ({"classifier": "linear_svm"}, "Unknown classifier='linear_svm'; choose from linear-svm, .* Did you mean "
                                   "linear-svm"),
    ({"classifier": "knn", "search_c": True}, "search_c=True chooses C, and classifier='knn' has none"),
    ({"classifier": "mlp", "row_space": True}, "row_space=True keeps a linear head's decisions only"),
    ({"classifier": "knn", "class_weight": "balanced"}, "class_weight= weighs the errors of linear-svm, logistic, "
                                                        "rbf-svm; classifier='knn' has none"),
])
def test_bad_heads_are_refused_by_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        classifiers.make_classifier(**kwargs)


def test_row_space_keeps_logistic_regression_decisions():
    rng = np.random.default_rng(1)
    train_x, test_x = rng.normal(size=(30, 200)), rng.normal(size=(5, 200))
    train_y = np.repeat(np.arange(3), 10)
    plain, rotated = (classifiers.make_classifier(classifier="logistic", row_space=flag).fit(train_x, train_y)
                      for flag in (False, True))
    np.testing.assert_allclose(rotated.decision_function(test_x), plain.decision_function(test_x), atol=1e-2)
    np.testing.assert_array_equal(rotated.predict(test_x), plain.predict(test_x))  # equal up to L-BFGS's tolerance


# ----------------------------------------------------------------------------- imbalanced classes, k folds


def _imbalanced(per_class, seed):
    """Two overlapping classes in 5 dimensions (centres 1.6 apart), ``per_class`` images each."""
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(size=(count, 5)) + 0.7 * label for label, count in enumerate(per_class)])
    return x, np.repeat(np.arange(len(per_class)), per_class)


@pytest.mark.parametrize("name", ["linear-svm", "logistic"])
def test_a_balanced_head_raises_the_recall_of_a_class_ten_times_smaller(name):
    """Planted 10:1 (200 against 20 training images, 1000 against 100 test images): the plain head favours the
    large class; weighing each class's errors by n / (k x its images) raises the small class's recall, and the
    balanced accuracy."""
    train_x, train_y = _imbalanced((200, 20), seed=0)
    test_x, test_y = _imbalanced((1000, 100), seed=1)
    plain, balanced = (classifiers.fit_evaluate(classifiers.make_classifier(classifier=name, class_weight=weight),
                                                train_x, train_y, test_x, test_y, ["large", "small"])
                       for weight in (None, "balanced"))
    assert balanced["per_class"]["small"]["accuracy"] > plain["per_class"]["small"]["accuracy"] + 0.3
    assert balanced["balanced_accuracy"] > plain["balanced_accuracy"]
    assert plain["accuracy"] > plain["balanced_accuracy"]  # the plain accuracy hides the small class


def test_balanced_accuracy_is_scikit_learns_also_with_a_class_that_has_no_test_image():
    from sklearn.metrics import balanced_accuracy_score

    rng = np.random.default_rng(3)
    true, predicted = rng.integers(0, 3, 40), rng.integers(0, 4, 40)  # class 3 is predicted, never true
    result = classifiers.evaluate_predictions(true, predicted, ["a", "b", "c", "d"])
    with pytest.warns(UserWarning, match="y_pred contains classes not in y_true"):
        expected = balanced_accuracy_score(true, predicted)
    assert result["balanced_accuracy"] == pytest.approx(expected)
    recalls = [row["accuracy"] for row in result["per_class"].values()]
    assert result["balanced_accuracy"] == pytest.approx(np.mean(recalls))
    per_class = {"a": {"accuracy": 0.5, "images": 4}, "b": {"accuracy": 1.0, "images": 2},
                 "c": {"accuracy": 0.25, "images": 8}}
    assert classifiers.format_recalls(per_class) == "a 0.50 (4), b 1.00 (2), c 0.25 (8)"
    assert classifiers.format_recalls(per_class, limit=2) == "c 0.25 (8), a 0.50 (4), ... (the 2 lowest of 3 classes)"


def test_stratified_folds_test_each_image_once_keep_class_shares_and_follow_the_seed():
    labels = np.repeat([0, 1, 2], [10, 5, 20])
    folds = classifiers.stratified_folds(labels, 5, seed=0)
    assert len(folds) == 5
    np.testing.assert_array_equal(np.sort(np.concatenate([test for _, test in folds])), np.arange(35))
    for train, test in folds:
        assert not set(train) & set(test) and len(train) + len(test) == 35
        assert np.bincount(labels[test]).tolist() == [2, 1, 4]  # a fifth of each class
    again, other = classifiers.stratified_folds(labels, 5, seed=0), classifiers.stratified_folds(labels, 5, seed=1)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again))
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(folds, other))
    for count in (1, 6):  # class 1 has 5 images: 6 folds would leave one without it
        with pytest.raises(ValueError, match=f"folds={count} should be at least 2 and at most the images of the "
                                             r"smallest class \(5\)"):
            classifiers.stratified_folds(labels, count)


def test_k_fold_reports_each_fold_and_the_mean_and_std():
    x, y = _blobs(10)
    result = classifiers.k_fold(classifiers.make_classifier(), x, y, 5, ["a", "b", "c"], seed=0)
    assert [fold["fold"] for fold in result["folds"]] == [1, 2, 3, 4, 5]
    assert sum(fold["images"] for fold in result["folds"]) == 30
    assert all(sorted(fold["recall"]) == ["a", "b", "c"] for fold in result["folds"])
    for key in ("accuracy", "balanced_accuracy"):
        values = [fold[key] for fold in result["folds"]]
        assert result[key] == {"mean": pytest.approx(np.mean(values)), "std": pytest.approx(np.std(values)),
                               "values": values}
    assert result["accuracy"]["mean"] >= 0.9
    assert classifiers.format_mean_std({"mean": 0.91234, "std": 0.0456}) == "0.912 ± 0.046"
