"""Transferability scores: which source (and which layer) to reuse, estimated in seconds from features.

Training a classifier on every candidate is the sure way to choose one (``python -m keras_tl.study
layers``). A transferability score looks at a candidate's features (or its source's ImageNet
predictions) on the target's *training* images only and returns one number, larger for a better
expected transfer. Four classic scores, in plain numpy:

- :func:`logme`: the log marginal likelihood of a Bayesian linear model on the features
  (You et al. 2021);
- :func:`h_score`: how much of the features' variance lies between the classes (Bao et al. 2019);
- :func:`leep`: how well the source's ImageNet classes predict the target's classes through an
  empirical conditional (Nguyen et al. 2020);
- :func:`nce`: the negative conditional entropy of the target's classes given the source's
  predicted class (Tran et al. 2019).

``python -m keras_tl.study select`` measures how well each one ranks the candidates against the
linear SVM's accuracy (Kendall's tau).
"""
import numpy as np

LOGME_MAX_ITERATIONS = 100  # the fixed point usually settles in under 10 steps
LOGME_TOLERANCE = 1e-6  # relative change of alpha / beta at which it stops
RANK_CUTOFF = 1e-10  # squared singular values below this fraction of the largest are round-off, left out


def _features(features, name="features"):
    array = np.asarray(features, dtype=np.float64)
    if array.ndim != 2 or len(array) < 2:
        raise ValueError(f"{name}= should be a 2-D array of at least 2 samples (samples x features); "
                         f"got shape {array.shape}.")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name}= holds NaN or infinite values; scores need finite features.")
    return array


def _labels(labels, count, name="labels"):
    array = np.asarray(labels)
    if array.shape != (count,):
        raise ValueError(f"{name}= should hold one label per sample, shape ({count},); got shape {array.shape}.")
    return array


def _left_singular(features):
    """``(U, s^2)``: the left singular vectors and squared singular values of ``features`` above the
    rank cut-off (:data:`RANK_CUTOFF`: singular values under 1e-5 of the largest, the round-off of float32
    features and of the Gram matrix), from the eigenvectors of the smaller Gram matrix (N x N or D x D,
    as the authors of LogME do): much faster than an SVD of a wide matrix."""
    samples, dimensions = features.shape
    if samples <= dimensions:
        sigma, u = np.linalg.eigh(features @ features.T)
    else:
        sigma, v = np.linalg.eigh(features.T @ features)
        u = features @ v  # U S
    order = np.argsort(sigma)[::-1]
    sigma, u = sigma[order], u[:, order]
    kept = sigma > max(sigma[0], 0.0) * RANK_CUTOFF
    sigma, u = sigma[kept], u[:, kept]
    return (u, sigma) if samples <= dimensions else (u / np.sqrt(sigma), sigma)


def logme(features, labels):
    """LogME: the mean, over classes, of the maximum log evidence per sample of a linear model on ``features``.

    You et al. 2021, "LogME: Practical Assessment of Pre-trained Models for Transfer Learning"
    (ICML, PMLR 139), algorithm 1. For each class, the one-hot target ``y`` is modelled as
    ``features @ w`` plus Gaussian noise of precision ``beta``, with a Gaussian prior of precision
    ``alpha`` on ``w``; ``alpha`` and ``beta`` maximise the evidence ``p(y | features)`` by MacKay's
    fixed point, written on the SVD of the features so that one SVD serves every class.

    The evidence counts all D eigenvalues of ``features.T @ features``, zeros included, as the
    paper's algorithm does; the authors' later fixed-point code (arXiv:2110.10545) leaves the
    zeros out when there are fewer samples than features, which adds ``(D - rank) log(alpha) / 2N``.
    """
    features = _features(features)
    labels = _labels(labels, len(features))
    samples, dimensions = features.shape
    u, sigma = _left_singular(features)
    if len(sigma) == 0:
        raise ValueError("features= are all zero; LogME needs features that vary.")
    evidences = []
    for label in np.unique(labels):
        target = (labels == label).astype(np.float64)
        evidences.append(_log_evidence(u.T @ target, target @ target, sigma, samples, dimensions))
    return float(np.mean(evidences))


def _log_evidence(projection, target_norm2, sigma, samples, dimensions):
    """The maximum log evidence per sample of one target, from its projection on the left singular vectors."""
    projection2 = projection ** 2
    outside = max(target_norm2 - projection2.sum(), 0.0)  # the part of the target no feature can fit
    alpha, beta = 1.0, 1.0
    for _ in range(LOGME_MAX_ITERATIONS):
        ratio = alpha / beta
        gamma = np.sum(sigma / (sigma + ratio))  # the effective number of parameters
        weights2 = np.sum(sigma * projection2 / (sigma + ratio) ** 2)  # |m|^2, m the posterior mean
        residual2 = np.sum(projection2 * (ratio / (sigma + ratio)) ** 2) + outside  # |y - F m|^2
        new_alpha = gamma / max(weights2, np.finfo(float).tiny)
        new_beta = (samples - gamma) / max(residual2, np.finfo(float).tiny)
        if not (np.isfinite(new_alpha) and new_alpha > 0 and np.isfinite(new_beta) and new_beta > 0):
            break  # the maximum is at the boundary (the features fit every label exactly): keep the last finite step
        alpha, beta = new_alpha, new_beta
        if abs(alpha / beta - ratio) <= LOGME_TOLERANCE * ratio:
            break
    ratio = alpha / beta
    weights2 = np.sum(sigma * projection2 / (sigma + ratio) ** 2)
    residual2 = np.sum(projection2 * (ratio / (sigma + ratio)) ** 2) + outside
    log_det = np.sum(np.log(alpha + beta * sigma)) + (dimensions - len(sigma)) * np.log(alpha)
    evidence = (dimensions * np.log(alpha) + samples * np.log(beta) - log_det - beta * residual2
                - alpha * weights2 - samples * np.log(2 * np.pi)) / 2
    return evidence / samples


def h_score(features, labels):
    """H-score: ``tr(cov(f)^+ cov(E[f | y]))``, the features' between-class variance in units of their covariance.

    Bao et al. 2019, "An Information-Theoretic Approach to Transferability in Task Transfer
    Learning" (ICIP), with the pseudo-inverse of the covariance. Computed on the SVD of the
    centred features, so a D x D matrix is never formed. When the centred features span all N - 1
    directions of the N samples (usual with at least as many features as samples) the score is
    C - 1 for C classes, whatever the features: it cannot tell such layers apart.
    """
    features = _features(features)
    labels = _labels(labels, len(features))
    centred = features - features.mean(axis=0)
    class_means = np.zeros_like(centred)
    for label in np.unique(labels):
        members = labels == label
        class_means[members] = centred[members].mean(axis=0)
    u, sigma = _left_singular(centred)
    # centred = U S V^T: cov(f)^+ = V S^-2 V^T (the 1/N factors cancel), and V = centred^T U S^-1
    whitened = class_means @ centred.T @ u / sigma
    return float(np.sum(whitened ** 2))


def _source_probabilities(source_probabilities, count=None):
    probabilities = _features(source_probabilities, "source_probabilities")
    if np.any(probabilities < 0) or not np.allclose(probabilities.sum(axis=1), 1, atol=1e-3):
        raise ValueError("source_probabilities= should be rows of probabilities (each >= 0, summing to 1), "
                         "such as a softmax output.")
    return probabilities


def leep(source_probabilities, labels):
    """LEEP: the mean log-likelihood of the target labels under the source's "dummy label" classifier.

    Nguyen et al. 2020, "LEEP: A New Measure to Evaluate Transferability of Learned
    Representations" (ICML). From the source's predicted probabilities ``theta`` (N x Z) and the
    target labels: the empirical joint ``P(y, z) = sum over samples of class y of theta_z / N``,
    the conditional ``P(y | z) = P(y, z) / P(z)``, and the score
    ``mean_i log(sum_z P(y_i | z) theta_iz)``, at most 0.
    """
    probabilities = _source_probabilities(source_probabilities)
    labels = _labels(labels, len(probabilities))
    classes, codes = np.unique(labels, return_inverse=True)
    joint = np.zeros((len(classes), probabilities.shape[1]))
    np.add.at(joint, codes, probabilities)
    joint /= len(labels)
    conditional = joint / np.maximum(joint.sum(axis=0), np.finfo(float).tiny)  # P(y | z)
    expected = np.sum(probabilities * conditional[codes], axis=1)  # sum_z P(y_i | z) theta_iz
    return float(np.mean(np.log(expected)))


def nce(source_labels, target_labels):
    """NCE: the negative conditional entropy ``-H(Y | Z)`` of the target labels given the source's labels.

    Tran et al. 2019, "Transferability and Hardness of Supervised Classification Tasks" (ICCV).
    ``source_labels`` are hard labels of the source's task on the target images (for an ImageNet
    network: the argmax of its probabilities); with the empirical joint ``P(y, z)``,
    ``NCE = sum_{y,z} P(y, z) log P(y | z)``, at most 0 (0: the source's label determines the target's).
    """
    source_labels = np.asarray(source_labels)
    if source_labels.ndim != 1 or len(source_labels) < 1:
        raise ValueError(f"source_labels= should be a 1-D array of labels; got shape {source_labels.shape}.")
    target_labels = _labels(target_labels, len(source_labels), "target_labels")
    _, sources = np.unique(source_labels, return_inverse=True)
    _, targets = np.unique(target_labels, return_inverse=True)
    joint = np.zeros((sources.max() + 1, targets.max() + 1))
    np.add.at(joint, (sources, targets), 1.0)
    joint /= len(source_labels)
    conditional = joint / joint.sum(axis=1, keepdims=True)  # P(y | z); every row has a sample
    present = joint > 0
    return float(np.sum(joint[present] * np.log(conditional[present])))
