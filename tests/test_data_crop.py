"""Zoom-in crops: targets follow the window exactly, people outside it vanish, windows are portraits."""
import torch

from densepose.data.crop import crop, zoom_window
from densepose.data.transforms import AugmentConfig, TrainTransform, resize


def _person(box, n_points=200, seed=0):
    """A target entry whose part mask is a disc and whose points lie on the mask."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(256.0) + 0.5, torch.arange(256.0) + 0.5, indexing="ij")
    mask = (((xx - 128) ** 2 + (yy - 128) ** 2) < 120**2).to(torch.uint8) * 2
    mask[:128] //= 2  # upper half of the disc part 1, lower half part 2
    x = torch.rand(n_points, generator=g) * 256
    y = torch.rand(n_points, generator=g) * 256
    dp = {"x": x, "y": y, "I": torch.randint(1, 25, (n_points,), generator=g),
          "U": torch.rand(n_points, generator=g), "V": torch.rand(n_points, generator=g), "mask": mask}
    return torch.tensor(box, dtype=torch.float32), dp


def _image_xy(box, dp):
    return box[0] + dp["x"] * (box[2] - box[0]) / 256, box[1] + dp["y"] * (box[3] - box[1]) / 256


def test_points_keep_their_image_position_and_part():
    box, dp = _person([100.0, 50.0, 300.0, 450.0])
    target = {"boxes": box[None], "dp": [dp], "keypoints": torch.tensor([[[150.0, 60.0, 2.0]] * 8 + [[150.0, 400.0, 2.0]] * 9])}
    image = torch.rand(3, 480, 640)
    window = (120, 40, 360, 280)
    out_image, out = crop(image, target, window)
    assert out_image.shape == (3, 240, 240)
    assert torch.equal(out_image, image[:, 40:280, 120:360])
    new_box, new_dp = out["boxes"][0], out["dp"][0]
    # The box is the person's part inside the window (the disc reaches from x 106 to 294).
    assert new_box[0] >= 0 and new_box[1] >= 0 and new_box[2] <= 240 and new_box[3] <= 240
    assert abs(float(new_box[3]) - 240) < 1e-4 and abs(float(new_box[2]) - (294 - 120)) < 1.0
    old_x, old_y = _image_xy(box, dp)
    inside = (old_x >= 120 + new_box[0]) & (old_x <= 120 + new_box[2]) & (old_y >= 40 + new_box[1]) & (old_y <= 40 + new_box[3])
    assert int(inside.sum()) == len(new_dp["x"]) > 10
    new_x, new_y = _image_xy(new_box, new_dp)
    torch.testing.assert_close(new_x + 120, old_x[inside], atol=1e-3, rtol=0)
    torch.testing.assert_close(new_y + 40, old_y[inside], atol=1e-3, rtol=0)
    assert torch.equal(new_dp["I"], dp["I"][inside]) and torch.equal(new_dp["U"], dp["U"][inside])
    # The part under each point is the same before and after the crop.
    def part(d, x, y):
        return d["mask"][y.long().clamp(0, 255), x.long().clamp(0, 255)]
    same = (part(new_dp, new_dp["x"], new_dp["y"]) == part(dp, dp["x"][inside], dp["y"][inside])).float().mean()
    assert same > 0.97  # nearest resampling may move a cell edge by one cell
    kp = out["keypoints"][0]
    assert (kp[:8, 2] == 2).all() and (kp[8:, 2] == 0).all()  # the feet at y 400 left the window
    assert torch.allclose(kp[0, :2], torch.tensor([30.0, 20.0]))


def test_people_outside_the_window_are_removed():
    inside_box, inside_dp = _person([10.0, 10.0, 110.0, 210.0])
    corner_box, corner_dp = _person([180.0, 180.0, 400.0, 400.0])  # box corner in the window, disc not
    far_box = torch.tensor([500.0, 300.0, 600.0, 460.0])
    target = {"boxes": torch.stack([inside_box, corner_box, far_box]), "dp": [inside_dp, corner_dp, None],
              "masks": torch.zeros(3, 480, 640, dtype=torch.uint8)}
    _, out = crop(torch.zeros(3, 480, 640), target, (0, 0, 200, 200))
    assert out["boxes"].shape == (1, 4) and len(out["dp"]) == 1 and out["masks"].shape == (1, 200, 200)
    assert out["dp"][0] is not None


def test_a_person_without_densepose_is_clipped():
    target = {"boxes": torch.tensor([[50.0, 50.0, 150.0, 400.0]]), "dp": [None]}
    _, out = crop(torch.zeros(3, 480, 640), target, (100, 100, 300, 300))
    assert out["boxes"].tolist() == [[0.0, 0.0, 50.0, 200.0]] and out["dp"] == [None]


def test_zoom_window_makes_one_person_large():
    boxes = torch.tensor([[200.0, 100.0, 260.0, 300.0]])  # 200 px tall in a 512 px image
    fills = []
    for seed in range(200):
        w = zoom_window(torch.Generator().manual_seed(seed), (512, 640), boxes, fill=(0.6, 2.5), min_side=0.4)
        assert w is not None
        x0, y0, x1, y1 = w
        assert 0 <= x0 < x1 <= 640 and 0 <= y0 < y1 <= 512
        assert abs((x1 - x0) / (y1 - y0) - 640 / 512) < 0.02  # the image's aspect ratio
        assert max(x0, 200) < min(x1, 260) and max(y0, 100) < min(y1, 300)  # the person is in it
        fills.append(200 / (y1 - y0))
    fills = torch.tensor(fills)
    assert fills.min() >= 200 / 512 - 1e-6 and fills.max() <= 1 / 0.4 * 200 / 512 + 0.01
    assert (fills > 0.9).float().mean() > 0.3  # often larger than the frame: a portrait


def test_zoom_window_needs_a_tall_person():
    g = torch.Generator().manual_seed(0)
    assert zoom_window(g, (512, 512), torch.zeros((0, 4))) is None
    assert zoom_window(g, (512, 512), torch.tensor([[0.0, 0.0, 10.0, 12.0]])) is None


def test_train_transform_zooms_only_when_asked():
    box, dp = _person([100.0, 50.0, 140.0, 130.0])  # 80 px tall: every zoom crops (min_side 0.4)
    target = {"boxes": box[None], "dp": [dp]}
    image = torch.rand(3, 300, 400) * 255
    plain = TrainTransform(AugmentConfig(min_sizes=(), flip_prob=0.0))
    zoom = TrainTransform(AugmentConfig(min_sizes=(), flip_prob=0.0, zoom_prob=1.0))
    for seed in range(5):
        img, _ = plain(image, target, seed)
        assert img.shape == image.shape
        img, out = zoom(image, target, seed)
        assert img.shape[-1] < 400 and len(out["dp"]) == 1


def test_a_crop_that_leaves_nobody_still_resizes():
    """A window on a person's box but off their pixels leaves no one; keypoints become (0, 17, 3)."""
    box, dp = _person([0.0, 0.0, 200.0, 200.0])
    target = {"boxes": box[None], "dp": [dp], "keypoints": torch.ones(1, 17, 3)}
    _, out = crop(torch.zeros(3, 300, 300), target, (0, 0, 20, 20))  # the disc's empty corner
    assert out["boxes"].shape == (0, 4) and out["keypoints"].shape == (0, 17, 3)
    _, resized = resize(torch.zeros(3, 20, 20), out, (40, 40))
    assert resized["keypoints"].shape == (0, 17, 3) and resized["boxes"].shape == (0, 4)
