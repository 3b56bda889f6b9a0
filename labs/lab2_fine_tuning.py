"""
Title: Lab 2, fine-tuning an ImageNet network
Description: Reuse MobileNet's ImageNet weights on a new task: train a new head on the frozen
    network, then unfreeze its top blocks and fine-tune them, without breaking BatchNormalization.
Run: python labs/lab2_fine_tuning.py   (about 3 minutes on a 2-core laptop CPU, no internet)

Every step below is also one option of `python -m keras_tl.fine_tune`; this lab takes the steps
one at a time so you can see (and change) each of them.
"""

"""
## Introduction

"Don't be a hero": a network trained on 1.3 million ImageNet photos has learned features that
serve many other image tasks (Yosinski et al. 2014, "How transferable are features in deep neural
networks?"). Its first layers detect edges and colours, general enough for almost anything; its
last layers detect ImageNet's own classes. So the recipe is:

1. take the network without its ImageNet classifier and put a new classifier (the *head*) on top;
2. freeze the network and train only the head;
3. unfreeze the top of the network and train on, at a much smaller learning rate.

Our target task: Animal-MNIST, 28x28 grey silhouettes of 10 animals. That is far from ImageNet's
colour photos, which is exactly when fine-tuning pays off over features alone.
"""

"""
## Setup
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_tl import augment, data, freezing, lora, optimizers  # noqa: E402
from keras_tl.fine_tune import build_classifier, predict_classes  # noqa: E402
from keras_tl.sources import get_source  # noqa: E402

keras.utils.set_random_seed(0)  # the same numbers every run, on a CPU
IMAGE_SIZE = 96  # MobileNet was trained at 224; 96 is 5x cheaper and enough for silhouettes
BATCH_SIZE = 32

"""
## Load the data: train, validation held out from train, and test

Early stopping and every other choice look at the *validation* images, which we cut out of the
training set. The test set is touched once, at the very end; a model tuned on the test set
reports a number that is too good.
"""
dataset = data.load_dataset("animal_mnist", seed=0, train_per_class=150, test_per_class=100)
train_set, validation_set = data.split_validation(dataset.train, fraction=0.2, seed=0)
num_classes = len(dataset.class_names)
print(f"{dataset.name}: {len(train_set)} train, {len(validation_set)} validation, {len(dataset.test)} test images")

"""
The pipeline decodes, converts grey to RGB, resizes and applies MobileNet's own
`preprocess_input` (pixels scaled to [-1, 1], as in ImageNet training). Labels become one-hot
vectors, which the loss `categorical_crossentropy` expects.
"""
source = get_source("mobilenet")


def pipeline(image_set, shuffle=False):
    batches = data.make_pipeline(image_set, IMAGE_SIZE, source.preprocess_input, BATCH_SIZE, shuffle=shuffle)
    return batches.map(lambda images, labels: (images, tf.one_hot(labels, num_classes)))


train, validation = pipeline(train_set, shuffle=True), pipeline(validation_set)

"""
## Build the source without its ImageNet classifier

`include_top=False` drops MobileNet's 1000-class layer; what is left turns a 96x96 image into a
3x3x1024 map of features.
"""
base = source.build(weights="imagenet", include_top=False, image_size=IMAGE_SIZE)
print(f"{base.name}: {len(base.layers)} layers, {base.count_params():,} parameters, output {base.output_shape}")

"""
## Freeze the base and put a new head on top

The head: global average pooling (one number per feature map), dropout, and a softmax layer with
one unit per class. Random flips, zooms, rotations and shifts (active only during training) make
the 1,200 training images look like more.

`build_classifier` calls the base through `freezing.InferenceMode`, which runs it with
`training=False` always. Why that matters comes in stage 2.
"""
freezing.freeze_all(base)
model = build_classifier(base, num_classes, augment.augmentation_layers(seed=0), dropout=0.2)
print(freezing.trainable_report(model))

"""
## Stage 1: train the head

Only the head's 10,250 weights train. A new head starts random; if the base were trainable now,
the head's large and noisy first gradients would flow into the pretrained features and wreck them.
"""
model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy", metrics=["accuracy"])
# shuffle=False only tells fit not to try: the tf.data pipeline already shuffles every epoch.
head_history = model.fit(train, validation_data=validation, epochs=3, shuffle=False, verbose=2)

"""
## Stage 2: unfreeze the top blocks, recompile, lower the learning rate

MobileNet is a stack of 13 depthwise-separable blocks (`conv_dw_i` + `conv_pw_i`, each followed by
BatchNormalization). We unfreeze the last two blocks: the top 8 layers that hold weights.

Two rules:

- **Recompile after changing `trainable`.** Keras reads the flags in `compile`.
- **A tenth of the learning rate.** The pretrained weights are already good; big steps would
  throw that away before the head and the top layers agree.
"""
freezing.unfreeze_top(base, 8)
print("unfrozen:", [layer.name for layer in base.layers if layer.trainable and layer.weights])
model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="categorical_crossentropy", metrics=["accuracy"])

"""
### Why BatchNormalization stays in inference mode

The unfrozen blocks contain BatchNormalization layers (Ioffe & Szegedy 2015). In training mode a BN
layer normalises with the mean and variance of the current batch and updates its moving averages.
Those moving averages were computed on ImageNet, and every layer above was trained with them;
a few batches of grey silhouettes would replace them, and the network would suddenly see inputs
on another scale. In inference mode BN uses (and keeps) the stored statistics, while its scale
and offset still train.

The Keras guide says to call `base(x, training=False)` for this. In Keras 3 that is not enough:
`fit` calls the whole model with `training=True`, and that value replaces the `training=False`
written in the functional graph (keras-team/keras#20285). `InferenceMode` makes the call itself.
Let's check: the moving mean of the last BN layer must not move during stage 2, its scale must.
"""
last_bn = base.get_layer("conv_pw_13_bn")
moving_mean_before, gamma_before = last_bn.moving_mean.numpy().copy(), last_bn.gamma.numpy().copy()

stop_early = keras.callbacks.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
tune_history = model.fit(train, validation_data=validation, epochs=3, callbacks=[stop_early], shuffle=False,
                         verbose=2)

print("moving mean unchanged:", np.array_equal(moving_mean_before, last_bn.moving_mean.numpy()))
print("scale (gamma) trained:", not np.allclose(gamma_before, last_bn.gamma.numpy()))

"""
## Evaluate once on the test set
"""
predicted = predict_classes(model, data.make_pipeline(dataset.test, IMAGE_SIZE, source.preprocess_input, BATCH_SIZE))
accuracy = float(np.mean(predicted == dataset.test.labels))
print(f"test accuracy after head + fine-tuning: {accuracy:.3f}")

"""
## Layer-wise learning rates

Discriminative fine-tuning (Howard & Ruder 2018, ULMFiT): lower layers should move less than upper
ones. `optimizers.make_optimizer` takes a multiplier per variable; here the older block learns at a
tenth of the rate of the newer one. The multiplier scales each *step*: with Adam, scaling the
gradient instead would change nothing, because Adam divides the gradient by its own size.
"""
rates = optimizers.layer_multipliers(model, {"conv_dw_12": 0.1, "conv_pw_12": 0.1, "conv_dw_12_bn": 0.1,
                                             "conv_pw_12_bn": 0.1})
model.compile(optimizer=optimizers.make_optimizer("adam", 1e-4, rates), loss="categorical_crossentropy",
              metrics=["accuracy"])
print(f"{len(rates)} variables get a tenth of the learning rate, e.g. {sorted(rates)[:2]}")

"""
## LoRA: adapt a layer with a fraction of its parameters

Hu et al. (2021): keep a weight matrix W frozen and learn a low-rank change W + A B. For the last
pointwise convolution (1024 x 1024 weights) rank 4 trains 4 x (1024 + 1024) = 8,192 numbers instead
of 1,048,576. Keras 3 has it built in: `layer.enable_lora(rank)`.
"""
full_count = freezing.parameter_counts(model)["trainable"]
lora.add_lora(base, rank=4, layer_names=["conv_pw_12", "conv_pw_13"])
lora_count = freezing.parameter_counts(model)["trainable"]
print(f"trainable parameters: {full_count:,} with the top blocks unfrozen, {lora_count:,} with LoRA rank 4")

"""
## Exercises

1. Train from scratch: `python -m keras_tl.fine_tune --mode scratch --epochs 10`. How far below
   the fine-tuned model does it end, and how long would it need to catch up?
2. Unfreeze more: `--unfreeze 20`, `--unfreeze conv_dw_8`, `--mode full`. Plot test accuracy
   against the number of trainable parameters. Where does it stop paying off on 1,200 images?
3. Replace `InferenceMode` by `base(x, training=False)` in `build_classifier` and rerun stage 2:
   what happens to the moving mean, and to the validation accuracy?
4. `--lr-ratio 0.01` gives the bottom layers a hundredth of the rate. Compare with `--mode full`.
5. LoRA: `--mode full --lora-rank 4` against `--mode full`. Compare accuracy, trainable
   parameters (the run's cost line) and seconds per epoch.
6. `--mix mixup` and `--mix cutmix`: do they help on 150 images per class? On 20?
"""
