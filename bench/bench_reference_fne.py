"""Benchmark: keras_tl's FNE against HPAI-BSC's reference ``fne`` package, on the same weights.

The reference (``pip install fne``: PyTorch, GPL-3.0; an optional bench dependency, never imported
by keras_tl) hooks every ``nn.Conv2d`` of a PyTorch model, averages each output over space, joins
them batch by batch with ``torch.cat``, then standardises (unbiased std) and discretises with
``torch.bucketize``. Its ``fit`` does all of that and then fits the classifier it was given.

The network: SqueezeNet 1.1 (no BatchNorm, so a conv output is the pre-ReLU map), with the ImageNet
weights that keras_tl imports offline, copied into torchvision's ``squeezenet1_1`` (kernels from
(h, w, in, out) to (out, in, h, w)). At 224 px torchvision's ceil-mode max pools give the same
map sizes as the Keras model's valid ones, so both compute the same 25 convolutions (``conv1`` and
the squeeze, expand1x1 and expand3x3 of fire2..fire9; the headless network, without ``conv10``).

Both get the same images as the same preprocessed float32 arrays in memory (NHWC for Keras, NCHW
for PyTorch), batches of ``--batch-size``; each timed call extracts every image and applies the FNE
post-processing, and no classifier is trained (the reference gets one whose ``fit`` does nothing).
Rows, interleaved over rounds in one process, the median round of each counts:

- ``reference fne (PyTorch)``: ``FullNetworkEmbedding(model.features, convs, ...).fit(loader)``;
- ``keras_tl, the reference's conv set``: ``FeatureExtractor(layers=convs).step()`` on each batch,
  then ``FNETransformer(reference="hpai")``: the same features, the reference's post-processing;
- ``keras_tl, its ReLU set``: the same with the 25 ReLU outputs (keras_tl's ``fne`` layer set).

Agreement: the largest difference of the pooled features from the reference's, over the largest
feature, and the fraction of FNE codes that differ.

    pip install fne      # with PyTorch and torchvision (CPU is enough)
    python bench/bench_reference_fne.py [--images 256] [--rounds 3] [--batch-size 32]
"""
import argparse
import importlib.metadata
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

IMAGE_SIZE = 224  # where torchvision's ceil-mode pools and the Keras model's valid ones agree


def torch_squeezenet(keras_base):
    """torchvision's ``squeezenet1_1`` with ``keras_base``'s weights (the headless Keras SqueezeNet 1.1)."""
    import torch
    import torchvision

    model = torchvision.models.squeezenet1_1(weights=None).eval()
    convs = {"conv1": model.features[0]}
    for index, fire in zip((3, 4, 6, 7, 9, 10, 11, 12), range(2, 10)):  # features[i] is fire2 .. fire9
        module = model.features[index]
        convs.update({f"fire{fire}_squeeze1x1": module.squeeze, f"fire{fire}_expand1x1": module.expand1x1,
                      f"fire{fire}_expand3x3": module.expand3x3})
    with torch.no_grad():
        for name, conv in convs.items():
            kernel, bias = keras_base.get_layer(name).get_weights()
            conv.weight.copy_(torch.from_numpy(kernel.transpose(3, 2, 0, 1)))
            conv.bias.copy_(torch.from_numpy(bias))
    hooked = {conv: name for name, conv in convs.items()}
    return model, [module_name for module_name, module in model.features.named_modules() if module in hooked]


class NoClassifier:
    """Stands in for the reference's classifier: ``fit`` keeps the features it was given, nothing more."""

    def fit(self, features, labels):
        self.features = features


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=256, help="images per timed call")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    try:
        import torch
        from fne import fne_torch
        from torch.utils.data import DataLoader, TensorDataset
    except ImportError as error:  # an optional bench dependency: `make bench` goes on without it
        print(f"bench_reference_fne: the reference package is not installed ({error}); nothing to measure. "
              "pip install fne (it brings PyTorch and torchvision; the CPU builds are enough)")
        return
    import keras
    import numpy as np

    from keras_tl import data
    from keras_tl.features import extraction, full_network_embedding

    image_set = data.load_dataset("animal_mnist", seed=0).train.subset(np.arange(args.images))
    relu = extraction.FeatureExtractor("squeezenet1_1", "fne", IMAGE_SIZE, batch_size=args.batch_size)
    convs = [layer.name for layer in relu.model.layers if isinstance(layer, keras.layers.Conv2D)]
    conv = extraction.FeatureExtractor("squeezenet1_1", convs, IMAGE_SIZE, batch_size=args.batch_size, model=relu.model)
    images = np.concatenate([batch for batch, _ in relu.pipeline(image_set).as_numpy_iterator()])
    batches = np.array_split(images, range(args.batch_size, len(images), args.batch_size))
    model, hooked = torch_squeezenet(relu.model)
    loader = DataLoader(TensorDataset(torch.from_numpy(images.transpose(0, 3, 1, 2).copy()),
                                      torch.zeros(len(images))), batch_size=args.batch_size)

    classifier = NoClassifier()
    embedding = fne_torch.FullNetworkEmbedding(model.features, hooked, classifier)  # its hooks stay: build it once

    def reference():
        embedding.fit(loader)
        return embedding._all_features.numpy(), classifier.features  # pooled features (kept by the package), codes

    def keras_tl(extractor):
        def run():
            step = extractor.step()
            pooled = np.concatenate([keras.ops.convert_to_numpy(step(batch)) for batch in batches])
            return pooled, full_network_embedding.FNETransformer(reference="hpai").fit_transform(pooled)
        return run

    methods = {"reference fne (PyTorch)": reference, "keras_tl, the reference's conv set": keras_tl(conv),
               "keras_tl, its ReLU set": keras_tl(relu)}
    outputs = {name: run() for name, run in methods.items()}  # warm-up: traces, hooks, thread pools
    rates = {name: [] for name in methods}
    for _ in range(args.rounds):
        for name, run in methods.items():
            started = time.perf_counter()
            run()
            rates[name].append(len(images) / (time.perf_counter() - started))
    ours, theirs = outputs["keras_tl, the reference's conv set"], outputs["reference fne (PyTorch)"]
    difference = np.abs(ours[0] - theirs[0]).max() / np.abs(theirs[0]).max()
    flips = np.mean(ours[1] != theirs[1])
    print(f"SqueezeNet 1.1 (ImageNet), {IMAGE_SIZE} px, {len(images)} Animal-MNIST images in memory, batch "
          f"{args.batch_size}, {len(convs)} convolutions; fne {importlib.metadata.version('fne')}, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads); {os.cpu_count()} CPU cores, load average "
          f"{os.getloadavg()[0]:.1f}; median of {args.rounds} interleaved rounds\n")
    print("| method | images/s | x reference | features |\n|---|---|---|---|")
    base = np.median(rates["reference fne (PyTorch)"])
    for name, rounds in rates.items():
        print(f"| {name} | {np.median(rounds):.1f} | {np.median(rounds) / base:.2f} | {outputs[name][0].shape[1]:,} |")
    print(f"\nconv set against the reference: max rel. difference of the pooled features {difference:.1e}, "
          f"FNE codes that differ {100 * flips:.4f} %")


if __name__ == "__main__":
    main()
