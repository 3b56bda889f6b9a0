"""Maps of a set of words: k-means clusters and 2-D projections (PCA, t-SNE; UMAP where installed) of unit vectors.

scikit-learn is imported when a map is drawn, not with this module.
"""
import numpy as np

PROJECTIONS = ("pca", "tsne")


def cluster_words(word_vectors, words, n_clusters, seed=0):
    """k-means cluster of each of ``words`` (on unit vectors), numbered in order of first appearance."""
    from sklearn.cluster import KMeans

    if not 1 <= n_clusters <= len(words):
        raise ValueError(f"Expected between 1 and {len(words)} clusters for {len(words)} words, got {n_clusters}.")
    vectors = np.stack([word_vectors.get_vector(word, norm=True) for word in words])
    labels = KMeans(n_clusters=n_clusters, n_init=10, random_state=seed).fit_predict(vectors)
    renumber = {label: number for number, label in enumerate(dict.fromkeys(labels))}
    return np.array([renumber[label] for label in labels])


def project_words(word_vectors, words, method="pca", seed=0):
    """2-D coordinates of ``words`` (see :func:`project_vectors`)."""
    return project_vectors(np.stack([word_vectors.get_vector(word, norm=True) for word in words]), method, seed)


def project_vectors(vectors, method="pca", seed=0):
    """2-D coordinates of the rows of ``vectors``: PCA (linear, keeps the large-scale layout), t-SNE
    (keeps neighbours) or, where ``umap-learn`` is installed, UMAP (McInnes et al. 2018, also keeps neighbours).

    All work on unit vectors. t-SNE (van der Maaten & Hinton 2008) needs a perplexity below the
    number of points; it is set to a third of it, at most 30.
    """
    vectors = np.asarray(vectors, dtype="float32")
    vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(vectors)
    if method == "tsne":
        from sklearn.manifold import TSNE

        if len(vectors) < 4:
            raise ValueError(f"t-SNE needs at least 4 points, got {len(vectors)}; use PCA for fewer.")
        perplexity = min(30.0, (len(vectors) - 1) / 3)
        return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(vectors)
    if method == "umap":
        try:
            import umap
        except ImportError:
            raise ModuleNotFoundError("method='umap' needs the umap-learn package: pip install umap-learn "
                                      "(or use 'pca' or 'tsne').") from None
        neighbours = max(2, min(15, len(vectors) - 1))
        return umap.UMAP(n_components=2, n_neighbors=neighbours, random_state=seed).fit_transform(vectors)
    raise ValueError(f"Unknown projection {method!r}; expected one of {', '.join(PROJECTIONS + ('umap',))}.")
