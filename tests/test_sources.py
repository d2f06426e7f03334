"""Sources read by index: zips, TFRecords, TFDS, memory-mapped arrays, the pack cache, crops,
mirrors, bad images, and the pipelines reading a batch's rows at a time."""

import io
import json
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from kgan import data
from kgan.config import TrainConfig
from kgan.data import pack, sources
from kgan.errors import Interrupted, KganError
from kgan.trainers import numpy_data
from kgan.trainers.tensorflow import make_dataset as tf_make_dataset
from tests.conftest import kgan


def images(n=12, size=(12, 10), seed=0):
    """`n` random RGB images (width, height) `size` as uint8 arrays, and labels 0..2."""
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n, size[1], size[0], 3), dtype=np.uint8),
            np.arange(n) % 3)


def png(array) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, "PNG")
    return out.getvalue()


def write_folder(root, pixels, labels):
    for i, (image, label) in enumerate(zip(pixels, labels)):
        (root / f"c{label}").mkdir(parents=True, exist_ok=True)
        (root / f"c{label}" / f"{i:03d}.png").write_bytes(png(image))
    return root


def write_zip(path, pixels, labels=None, extra=None):
    """StyleGAN2-ADA's dataset_tool.py layout: 00000/img00000000.png ... and dataset.json."""
    names = [f"{i // 1000:05d}/img{i:08d}.png" for i in range(len(pixels))]
    with zipfile.ZipFile(path, "w") as archive:
        for name, image in zip(names, pixels):
            archive.writestr(name, png(image))
        listed = None if labels is None else [[n, int(v)] for n, v in zip(names, labels)]
        archive.writestr("dataset.json", json.dumps({"labels": (listed or []) + (extra or [])
                                                     if labels is not None else None}))
    return path


def example(image_bytes=None, label=None, image_key="image/encoded",
            label_key="image/class/label"):
    feature = {}
    if image_bytes is not None:
        feature[image_key] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[image_bytes]))
    if label is not None:
        feature[label_key] = tf.train.Feature(int64_list=tf.train.Int64List(value=[label]))
    feature["image/height"] = tf.train.Feature(float_list=tf.train.FloatList(value=[1.5, -2.0]))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def write_tfrecords(paths, pixels, labels, **keys):
    """The records split over `paths` in turn, written by TensorFlow itself."""
    writers = [tf.io.TFRecordWriter(str(p)) for p in paths]
    for i, (image, label) in enumerate(zip(pixels, labels)):
        writers[i % len(paths)].write(example(png(image), int(label), **keys))
    for writer in writers:
        writer.close()


def packed_pixels(ds):
    return ds.x.uint8(np.arange(len(ds.x)))


def test_a_zip_in_stylegan2_ada_layout_reads_as_the_same_folder(tmp_path):
    pixels, labels = images()
    ds = data.load(str(write_zip(tmp_path / "set.zip", pixels, labels)), image_size=8)
    assert ds.name == "set" and ds.x.shape == (12, 8, 8, 3)
    assert ds.y.tolist() == labels.tolist()
    folder = data.load(str(write_folder(tmp_path / "folder", pixels, labels)), image_size=8)
    order = np.argsort([f"c{label}/{i:03d}" for i, label in enumerate(labels)], kind="stable")
    np.testing.assert_array_equal(packed_pixels(folder), packed_pixels(ds)[order])
    unlabeled = data.load(str(write_zip(tmp_path / "plain.zip", pixels)), image_size=8)
    assert unlabeled.y is None and len(unlabeled.x) == 12


def test_zip_errors_are_exact(tmp_path):
    with zipfile.ZipFile(tmp_path / "empty.zip", "w") as archive:
        archive.writestr("readme.txt", "no images")
    pixels, labels = images(3)
    missing = write_zip(tmp_path / "missing.zip", pixels, labels,
                        extra=[["00000/img00000099.png", 1]])
    for path, message in [
        (tmp_path / "empty.zip", f"Zip archive {tmp_path / 'empty.zip'} holds no "
                                 ".png/.jpg/.webp images"),
        (missing, f"dataset.json in {missing} names 1 file(s) the archive does not hold, "
                  "the first: 00000/img00000099.png"),
    ]:
        with pytest.raises(KganError) as e:
            data.load(str(path))
        assert str(e.value) == message


def test_tfrecord_shards_as_a_glob_and_their_errors(tmp_path):
    pixels, labels = images(10)
    write_tfrecords([tmp_path / f"train-0000{k}-of-00002" for k in range(2)], pixels, labels)
    ds = data.load(str(tmp_path / "train-*"), image_size=8)
    assert ds.x.shape == (10, 8, 8, 3)
    # Shard 0 holds records 0, 2, 4, ...; shard 1 the odd ones.
    order = np.r_[0:10:2, 1:10:2]
    assert ds.y.tolist() == labels[order].tolist()
    direct = np.stack([sources.decode(png(p), 8, "center", "RGB") for p in pixels[order]])
    np.testing.assert_array_equal(packed_pixels(ds), direct)
    with tf.io.TFRecordWriter(str(tmp_path / "bad.tfrecord")) as writer:
        writer.write(example(label=3))
    with pytest.raises(KganError) as e:
        data.load(str(tmp_path / "bad.tfrecord"))
    assert str(e.value) == (
        f"Record 0 of {tmp_path / 'bad.tfrecord'} has no `image/encoded` feature (found: "
        "image/class/label, image/height): kgan reads tf.train.Example records with "
        "`image/encoded` (and `image/class/label`)")


def test_the_example_parser_reads_what_tensorflow_writes():
    parsed = sources.parse_example(example(b"\x00bytes\xff", -7))
    assert parsed == {"image/encoded": [b"\x00bytes\xff"], "image/class/label": [-7],
                      "image/height": [1.5, -2.0]}


def test_a_prepared_tfds_data_set_reads_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    with pytest.raises(KganError) as e:
        data.load("tfds:shapes")
    assert str(e.value) == (
        f"tfds:shapes is not prepared in {tmp_path} (kgan reads a prepared copy, offline): "
        f"where you are online, run `tfds build shapes --data_dir {tmp_path}` and copy the "
        "folder, or set TFDS_DATA_DIR")
    version = tmp_path / "shapes" / "1.0.0"
    version.mkdir(parents=True)
    (version / "label.labels.txt").write_text("circle\nsquare\ntriangle\n")
    pixels, labels = images(6, size=(8, 8))
    write_tfrecords([version / "shapes-train.tfrecord-00000-of-00001"], pixels, labels,
                    image_key="image", label_key="label")
    write_tfrecords([version / "shapes-test.tfrecord-00000-of-00001"], pixels[:2], labels[:2],
                    image_key="image", label_key="label")
    ds = data.load("tfds:shapes", image_size=8)
    assert ds.name == "shapes" and ds.y.tolist() == labels.tolist()
    assert ds.classes == ["circle", "square", "triangle"]
    np.testing.assert_array_equal(packed_pixels(ds), pixels)
    assert len(data.load("tfds:shapes", image_size=8, split="test").x) == 2


def test_arrays_are_memory_mapped_and_data_pack_writes_one(tmp_path):
    pixels, labels = images(20, size=(8, 8))
    np.savez(tmp_path / "plain.npz", x_train=pixels, y_train=labels)
    np.save(tmp_path / "images.npy", pixels)
    for name in ("plain.npz", "images.npy"):
        ds = data.load(str(tmp_path / name))
        assert isinstance(ds.x.records.base, np.memmap) or isinstance(ds.x.records, np.memmap)
        np.testing.assert_array_equal(ds.x[3:5], pixels[3:5] / np.float32(127.5) - 1)
    np.savez_compressed(tmp_path / "small.npz", x_train=pixels)
    assert data.load(str(tmp_path / "small.npz")).reading == "in memory"

    folder = write_folder(tmp_path / "folder", pixels, labels)
    result = kgan("data", "pack", folder, tmp_path / "packed.npz", "--image-size", 8)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(tmp_path / "packed.npz")
    repacked = data.load(str(tmp_path / "packed.npz"))
    assert repacked.reading == "memory-mapped"
    np.testing.assert_array_equal(packed_pixels(repacked),
                                  packed_pixels(data.load(str(folder), image_size=8)))
    assert repacked.y.tolist() == sorted(labels.tolist())  # folders list class by class
    bad = kgan("data", "pack", folder, tmp_path / "out.zip")
    assert (bad.exit_code, bad.stderr) == (1, f"Error: OUT must end in .npz. Received: "
                                              f"out={tmp_path / 'out.zip'}\n")


def test_data_info_says_what_a_source_holds_without_packing_it(tmp_path):
    pixels, labels = images(9, size=(20, 10))
    folder = write_folder(tmp_path / "shoes", pixels, labels)
    result = kgan("data", "info", folder, "--image-size", 16, "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["images"] == 9 and info["shape"] == [16, 16, 3]
    assert info["classes"] == {"c0": 3, "c1": 3, "c2": 3}
    assert info["first_image"] == "20x10 RGB" and info["bytes_packed"] == 9 * 16 * 16 * 3
    assert info["reading"].endswith("(not built yet), then memory-mapped")
    assert not list(Path(os.environ["KGAN_CACHE"]).glob("packed/shoes-*"))


def test_a_center_crop_keeps_the_middle_and_none_stretches(tmp_path):
    # Left third red, middle green, right blue: a center crop is all green.
    stripes = np.zeros((10, 30, 3), np.uint8)
    stripes[:, :10, 0] = stripes[:, 10:20, 1] = stripes[:, 20:, 2] = 255
    (tmp_path / "wide").mkdir()
    (tmp_path / "wide" / "stripes.png").write_bytes(png(stripes))
    center = data.load(str(tmp_path / "wide"), image_size=10).x.uint8([0])[0]
    assert (center[..., 1] == 255).all() and center[..., [0, 2]].max() == 0
    stretched = data.load(str(tmp_path / "wide"), image_size=10, crop="none").x.uint8([0])[0]
    assert stretched[:, 0, 0].min() > 200 and stretched[:, -1, 2].min() > 200


def test_mirror_doubles_the_data_with_x_flips(toy_npz):
    plain, mirrored = data.load(str(toy_npz)), data.load(str(toy_npz), mirror=True)
    assert len(mirrored.x) == 400 and mirrored.y.tolist() == plain.y.tolist() * 2
    np.testing.assert_array_equal(mirrored.x[[203, 3]], np.stack([plain.x[3][:, ::-1],
                                                                  plain.x[3]]))


def test_a_corrupt_image_is_named_or_skipped_and_counted(tmp_path):
    pixels, labels = images(5, size=(8, 8))
    folder = write_folder(tmp_path / "set", pixels, labels)
    (folder / "c1" / "broken.png").write_bytes(png(pixels[0])[:60])  # a truncated PNG
    with pytest.raises(KganError) as e:
        data.load(str(folder))
    assert str(e.value).startswith(f"Cannot read image {folder / 'c1' / 'broken.png'}: ")
    assert str(e.value).endswith("Fix or remove it, or pass --skip-bad to train without "
                                 "such images")
    ds = data.load(str(folder), skip_bad=True)
    assert len(ds.x) == 5 and ds.reading.endswith("; 1 unreadable image(s) skipped")
    assert ds.y.tolist() == sorted(labels.tolist())


def test_an_interrupted_pack_continues_where_it_stopped(tmp_path):
    pixels, labels = images(3 * pack.CHUNK + 5, size=(8, 8))
    folder = write_folder(tmp_path / "set", pixels, labels)
    calls = []

    def ctrl_c_after_a_chunk(done, total):
        calls.append(done)
        if done >= pack.CHUNK:
            raise KeyboardInterrupt

    with pytest.raises(Interrupted) as e:
        data.load(str(folder), image_size=8, progress=ctrl_c_after_a_chunk)
    assert "of 197 images are packed in" in str(e.value)
    started = []
    resumed = data.load(str(folder), image_size=8, progress=lambda d, t: started.append(d))
    assert 0 < started[0] < 197 and started[-1] == 197  # it went on from what was kept
    whole = data.load(str(write_folder(tmp_path / "again", pixels, labels)), image_size=8)
    np.testing.assert_array_equal(packed_pixels(resumed), packed_pixels(whole))


def test_a_changed_folder_is_another_pack(tmp_path):
    pixels, labels = images(4, size=(8, 8))
    folder = write_folder(tmp_path / "set", pixels, labels)
    first, first_key = data.load(str(folder)), data.key(str(folder))
    (folder / "c0" / "new.png").write_bytes(png(pixels[1]))
    second = data.load(str(folder))
    assert data.key(str(folder)) != first_key and (len(first.x), len(second.x)) == (4, 5)


@pytest.mark.parametrize("make", [numpy_data.make_dataset, tf_make_dataset])
def test_pipelines_read_uint8_rows_into_the_same_batches_as_floats_in_memory(toy_npz, make):
    ds = data.load(str(toy_npz))
    in_memory = np.asarray(ds.x)  # float32, as kgan held data before it read by index
    streamed = [np.asarray(b[0]) for b in make((ds.x, ds.y), 16, 5, 12, 0, 2, skip_steps=3)]
    held = [np.asarray(b[0]) for b in make((in_memory, ds.y), 16, 5, 12, 0, 2, skip_steps=3)]
    assert len(streamed) == 21
    for a, b in zip(streamed, held, strict=True):
        assert a.dtype == np.float32 and a.tobytes() == b.tobytes()


def test_resume_refuses_data_that_changed_and_says_what_changed(tmp_path):
    pixels, labels = images(8, size=(8, 8))
    folder = write_folder(tmp_path / "set", pixels, labels)
    common = ["--runs-dir", tmp_path / "runs", "--quiet"]
    result = kgan("train", "--dataset", folder, "--image-size", 8, "--batch-size", 4,
                  "--latent-dim", 4, "--epochs", 1, "--steps-per-epoch", 1, "--mirror",
                  "--no-tensorboard", "--no-curves", *common)
    assert result.exit_code == 0, result.output
    run = result.stdout.strip()
    config = json.loads((Path(run) / "config.json").read_text())
    assert (config["data_count"], config["crop"], config["mirror"]) == (16, "center", True)
    (folder / "c0" / "new.png").write_bytes(png(pixels[1]))
    refused = kgan("train", "--resume", run, "--epochs", 2, *common)
    assert (refused.exit_code, refused.stderr) == (1, (
        f"Error: Dataset {folder} changed since the run started: it had 16 images, now 18. "
        "Resume on the data it trained on, or start a new run\n"))
    (folder / "c0" / "new.png").unlink()
    resumed = kgan("train", "--resume", run, "--epochs", 2, *common)
    assert resumed.exit_code == 0, resumed.output


def test_images_index_like_an_array(toy_npz):
    ds = data.load(str(toy_npz))
    whole = np.asarray(ds.x)
    for index in (5, -1, slice(3, 9, 2), [7, 1, 7], np.array([], int), ds.y == 2):
        np.testing.assert_array_equal(ds.x[index], whole[index])
    np.testing.assert_array_equal(ds.x[..., 0], whole[..., 0])
    with pytest.raises(IndexError):
        ds.x[[200]]


@pytest.mark.parametrize("replicas", [2, 4])
def test_each_worker_reads_only_its_share_of_every_global_batch(replicas):
    from kgan.trainers.tensorflow import worker_batches

    ids = np.arange(100, dtype=np.int32)[:, None]
    labels = np.arange(100, dtype=np.int32) + 1000
    args = ((ids, labels), 8, 3, 10, 0, 2)
    whole = [b[0].numpy()[:, 0] for b in worker_batches(*args, skip_steps=4)]
    shares = []
    for worker in range(2):
        context = tf.distribute.InputContext(2, worker, replicas)
        batches = list(worker_batches(*args, skip_steps=4, context=context))
        assert {len(b[0]) for b in batches} == {8 // replicas}
        for images, batch_labels in batches:  # images and labels stay together
            np.testing.assert_array_equal(batch_labels.numpy(), images.numpy()[:, 0] + 1000)
        # A step's local replicas, in turn: this worker's rows of that global batch.
        per_step = replicas // 2
        shares.append([np.concatenate([b[0].numpy()[:, 0] for b in
                                       batches[i * per_step:(i + 1) * per_step]])
                       for i in range(len(batches) // per_step)])
    assert len(whole) == len(shares[0]) == len(shares[1]) == 16
    for step, (first, second) in enumerate(zip(*shares)):
        np.testing.assert_array_equal(first, whole[step][:4])
        np.testing.assert_array_equal(second, whole[step][4:])


def test_a_damaged_pack_is_built_again(tmp_path):
    pixels, labels = images(6, size=(8, 8))
    folder = write_folder(tmp_path / "damaged", pixels, labels)
    first = packed_pixels(data.load(str(folder), image_size=8))
    array = next(Path(os.environ["KGAN_CACHE"]).glob("packed/damaged-8-*/images.npy"))
    array.write_bytes(array.read_bytes()[:300])  # cut short, as by a full disk
    np.testing.assert_array_equal(packed_pixels(data.load(str(folder), image_size=8)), first)


def test_a_run_from_before_reads_its_data_as_it_did_and_resumes(tmp_path, monkeypatch):
    """tests/data/old-run: a dcgan run of tests/data/folder8 (some images 10x8) made by kgan
    before it read data by index and had --crop; folder8-as-read-before.npz: the float32 images
    and labels that kgan trained it on. A resume reads the same numbers, so (with the
    pipelines' equality above) it continues exactly."""
    root = Path(__file__).resolve().parent
    monkeypatch.chdir(root.parent)  # its config.json names tests/data/folder8
    run = tmp_path / "old-run"
    shutil.copytree(root / "data" / "old-run", run)
    config = TrainConfig.load(run / "config.json")
    assert (config.crop, config.data_key) == ("none", None)  # it stretched; no fingerprint yet
    before = np.load(root / "data" / "folder8-as-read-before.npz")
    now = data.load(config.dataset, config.image_size, crop=config.crop)
    assert np.asarray(now.x).tobytes() == before["x"].tobytes()
    assert now.y.tolist() == before["y"].tolist()
    resumed = kgan("train", "--resume", run, "--epochs", 2, "--quiet")
    assert resumed.exit_code == 0, resumed.output
    assert [json.loads(line)["step"] for line in
            (run / "metrics.jsonl").read_text().splitlines()] == [3, 6]
    drawn = kgan("sample", run, "--n", 4)
    assert drawn.exit_code == 0, drawn.output
    assert Image.open(drawn.stdout.split()[0]).size[0] > 8


def test_an_image_over_pillows_pixel_limit_is_named_not_a_traceback(tmp_path, monkeypatch):
    pixels, labels = images(2, size=(8, 8))
    folder = write_folder(tmp_path / "bombs", pixels, labels)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 20)  # 8x8 = 64 > twice the limit
    with pytest.raises(KganError) as e:
        data.load(str(folder), image_size=8)
    assert str(e.value).startswith(f"Cannot read image {folder / 'c0' / '000.png'}: Image size "
                                   "(64 pixels) exceeds limit of 40 pixels")
