"""The data: Fashion-MNIST (the paper's), MNIST and CIFAR-100 (the fixed-rank report's).
- idx       the IDX file reader, with checks;
- fetch     the cache folder, atomic writes, downloads (used only by data_scripts/);
- datasets  loaders, the embedded subset (fashion_mnist_subset.npz), the validation split;
- prepare   filling the cache once (data_scripts/ call it). The loaders never download.
"""
