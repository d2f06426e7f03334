"""kgan's Keras versions of the networks papers measure with, against their reference code with
the same weights: the FID Inception (`--features fid-inception`) against pytorch-fid's, with
random weights (the real ones are a 91 MB download), its PyTorch-file reader and what it says
offline; LPIPS (`kgan project --distance lpips`) against the `lpips` package, with its real
linear layers over a random VGG16."""

import hashlib
import importlib.metadata
import importlib.util
import json
import pickle
import sys
import types

import keras
import numpy as np
import pytest
from conftest import kgan

from kgan import fid_inception, metrics
from kgan.errors import KganError


def with_torchvision():
    """Makes torchvision's model code importable. Its PyPI wheels link their C ops against
    CUDA's libraries, and on a CPU-only PyTorch its import fails registering them; the
    architectures need none, so its Python model code is imported without them then."""
    try:
        import torchvision  # noqa: F401
    except (ImportError, RuntimeError):
        for name in [name for name in sys.modules if name.split(".")[0] == "torchvision"]:
            del sys.modules[name]
        shim = types.ModuleType("torchvision")
        shim.__path__ = list(importlib.util.find_spec("torchvision").submodule_search_locations)
        shim.__version__ = importlib.metadata.version("torchvision")
        sys.modules["torchvision"] = shim
        import torchvision.models.inception  # noqa: F401

        shim.models = sys.modules["torchvision.models"]


def pytorch_fid_inception():
    """pytorch-fid's `inception` module."""
    with_torchvision()
    from pytorch_fid import inception

    return inception


@pytest.fixture(scope="module")
def random_fid(tmp_path_factory):
    """Random weights for the FID Inception, saved as pytorch-fid's file is (PyTorch's pre-1.6
    format), and pytorch-fid's `InceptionV3` (default settings) holding them."""
    import torch

    torch.set_num_threads(1)
    inception = pytorch_fid_inception()
    with pytest.MonkeyPatch.context() as patch:  # its structure, without its download
        patch.setattr(inception, "load_state_dict_from_url", lambda *args, **kwargs: {})
        patch.setattr(torch.nn.Module, "load_state_dict", lambda *args, **kwargs: None)
        structure = inception.fid_inception_v3().state_dict()
    generator = torch.Generator().manual_seed(0)
    state = {}
    for name, value in structure.items():
        if name.endswith(("running_var", "bn.weight")):  # positive, around 1
            value = torch.rand(value.shape, generator=generator) + 0.5
        elif value.is_floating_point():  # He-like scale, so that 94 layers keep a spread
            scale = 1 / np.sqrt(value[0].numel()) if value.ndim > 1 else 0.1
            value = torch.randn(value.shape, generator=generator) * scale
        state[name] = value
    path = tmp_path_factory.mktemp("fid") / "pt_inception-random.pth"
    torch.save(state, path, _use_new_zipfile_serialization=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(inception, "load_state_dict_from_url", lambda *args, **kwargs: state)
        reference = inception.InceptionV3().eval()  # loads `state`, strictly: every key
    return path, state, reference


def test_features_equal_pytorch_fids_for_the_same_weights(random_fid):
    import torch

    path, _, reference = random_fid
    extractor = metrics.fid_inception(path)
    rng = np.random.default_rng(0)
    for shape in ((4, 28, 28, 1), (2, 40, 40, 3)):  # gray, as Fashion-MNIST; RGB
        pixels = rng.integers(0, 256, shape, dtype=np.uint8)
        features, _ = extractor(pixels.astype(np.float32) / 127.5 - 1.0)
        # As pytorch-fid reads image files: RGB (gray converted), in [0, 1], channels first.
        rgb = np.repeat(pixels, 3 // shape[-1], axis=-1).transpose(0, 3, 1, 2) / 255.0
        with torch.no_grad():
            (want,) = reference(torch.from_numpy(rgb.astype(np.float32)))
        want = want.numpy().reshape(len(pixels), 2048)
        assert features.shape == (len(pixels), 2048) and want.std() > 0.01
        assert np.abs(features - want).max() / np.abs(want).max() <= 1e-4, shape
    card = metrics.card(extractor, 10, 10, 2048)
    assert card["extractor_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    assert card["comparable_with_papers"] is True
    assert card["resize"].startswith("rounded to uint8 pixels")


def test_torch_files_are_read_as_data_in_both_formats(random_fid, tmp_path):
    import torch

    path, state, _ = random_fid
    torch.save(state, tmp_path / "zip.pth")  # PyTorch's zip format (1.6 on)
    for file in (path, tmp_path / "zip.pth"):
        read = fid_inception.read_torch_file(file)
        assert read.keys() == state.keys()
        for name, value in state.items():
            np.testing.assert_array_equal(read[name], value.numpy(), err_msg=name)
    # A pickle that would run code is refused, and nothing runs.
    ran = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (exec, (f"open({str(ran)!r}, 'w')",))

    (tmp_path / "evil.pth").write_bytes(pickle.dumps({"x": Payload()}))
    with pytest.raises(KganError) as error:
        fid_inception.read_torch_file(tmp_path / "evil.pth")
    assert not ran.exists()
    assert str(error.value) == (f"{tmp_path / 'evil.pth'} is not a PyTorch state dict of "
                                "tensors: it refers to builtins.exec, which kgan does not run")
    (tmp_path / "short.pth").write_bytes(path.read_bytes()[:5000])
    with pytest.raises(KganError, match="^Cannot read .*short.pth as a PyTorch state dict"):
        fid_inception.read_torch_file(tmp_path / "short.pth")
    del state["Mixed_7c.branch_pool.bn.running_var"]
    torch.save(state, tmp_path / "partial.pth")
    with pytest.raises(KganError) as error:
        metrics.fid_inception(tmp_path / "partial.pth")
    assert str(error.value) == (f"{tmp_path / 'partial.pth'} is not pytorch-fid's Inception "
                                "state dict: it has no Mixed_7c.branch_pool.bn.running_var")


def test_kgan_eval_with_fid_inception_and_its_errors(random_fid, toy_npz, tmp_path, monkeypatch):
    path, _, _ = random_fid
    done = kgan("eval", "--dataset", toy_npz, "--features", "fid-inception", "--fid-weights",
                path, "--n", 6, "--json")
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    protocol = result["protocol"]  # with the metric card
    assert protocol["features"] == "fid-inception" and result["fid"] >= 0
    assert protocol["comparable_with_papers"] is True
    assert protocol["extractor_sha256"] == metrics.file_sha256(path)
    # Offline, with no weights anywhere kgan or pytorch-fid keeps them: one line, where to get
    # them. (A proxy that refuses makes "offline" certain on any machine.)
    for name in ("KGAN_FID_WEIGHTS", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    done = kgan("eval", "--dataset", toy_npz, "--features", "fid-inception", "--n", 6)
    tried, error = done.output.splitlines()  # the download's progress, then the error
    assert done.exit_code == 1 and tried.startswith("Downloading data from")
    assert error.startswith("Error: --features fid-inception needs pytorch-fid's Inception "
                            "weights, which are not on this machine and could not be "
                            "downloaded (")
    assert error.endswith(f"Download {fid_inception.WEIGHTS_URL} and give its path with "
                          "--fid-weights PATH or KGAN_FID_WEIGHTS.")
    done = kgan("eval", "--dataset", toy_npz, "--fid-weights", path, "--n", 6)
    assert (done.exit_code, done.output) == (1, "Error: --fid-weights is for --features "
                                             "fid-inception. Received: features=classifier\n")
    done = kgan("eval", "--dataset", toy_npz, "--features", "fid-inception", "--fid-weights",
                tmp_path / "none.pth", "--n", 6)
    assert (done.exit_code, done.output) == (1, f"Error: No FID Inception weights at "
                                             f"{tmp_path / 'none.pth'} (--fid-weights or "
                                             "KGAN_FID_WEIGHTS): expected pytorch-fid's "
                                             f"{fid_inception.WEIGHTS_FILE}\n")


def test_lpips_equals_the_lpips_package_for_the_same_weights(tmp_path, monkeypatch):
    import torch

    from kgan import lpips as klpips
    from kgan import project as projection

    torch.set_num_threads(1)
    with_torchvision()
    import lpips

    reference = lpips.LPIPS(net="vgg", pnet_rand=True, verbose=False).eval()  # random VGG16
    vgg = {name.replace("net.slice", "").split(".", 1)[1]: value for name, value in
           reference.state_dict().items() if name.startswith("net.")}
    torch.save({f"features.{name}": value for name, value in vgg.items()},
               tmp_path / klpips.VGG_FILE)  # as torchvision's file names them
    monkeypatch.setenv("KGAN_LPIPS_VGG", str(tmp_path / klpips.VGG_FILE))
    assert klpips.weights_files()[1].name == "vgg.pth"  # the installed package's own
    search = projection.distance("lpips", None, types.SimpleNamespace(image_shape=(28, 28, 1)))
    rng = np.random.default_rng(0)
    a, b = (rng.uniform(-1, 1, (3, 28, 28, 1)).astype(np.float32) for _ in range(2))
    ours = keras.ops.convert_to_numpy(search.per_image(a, search.features(b), b)) \
        - projection.PIXEL_WEIGHT * np.mean((a - b) ** 2, axis=(1, 2, 3))
    with torch.no_grad():
        want = reference(*(torch.from_numpy(np.repeat(x, 3, -1).transpose(0, 3, 1, 2))
                           for x in (a, b))).numpy().reshape(3)
    assert want.min() > 0
    np.testing.assert_allclose(ours, want, rtol=1e-4)
    monkeypatch.setenv("KGAN_LPIPS_VGG", str(tmp_path / "none.pth"))
    with pytest.raises(KganError, match="^--distance lpips needs torchvision's VGG16 weights"):
        projection.distance("lpips", None, types.SimpleNamespace(image_shape=(28, 28, 1)))
