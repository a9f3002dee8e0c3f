"""Real Hugging Face and timm model classes, built small from their configs with random weights (nothing is
downloaded), and the batches the recipes in docs/pytorch-recipes.md are run on.

Not a test module: test_models.py and test_bwact.py's documentation tests import it. transformers and
timm are imported only when a builder is called.
"""
import torch

# VideoMAE: 4 frames of 32x32, tubelets 2x8x8: 2 x 4 x 4 = 32 tokens, 2 layers.
VIDEOMAE = dict(image_size=32, patch_size=8, num_channels=3, num_frames=4, tubelet_size=2, hidden_size=32,
                num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, decoder_hidden_size=32,
                decoder_num_hidden_layers=1, decoder_num_attention_heads=2, decoder_intermediate_size=64,
                num_labels=3)
# Hugging Face ViT: 32x32 images, 8x8 patches: 16 tokens plus CLS, 2 layers.
VIT = dict(image_size=32, patch_size=8, num_channels=3, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
           intermediate_size=64, num_labels=3)
# timm ViT-Tiny (12 blocks, width 192) at 64x64: 16 tokens plus CLS.
TIMM_NAME, TIMM_SIZE = "vit_tiny_patch16_224", 64


def quiet():
    """No progress bars or advice from transformers (save_pretrained and from_pretrained print them in 5.x)."""
    import transformers
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    return transformers


def videomae(cls_name="VideoMAEModel", seed=0):
    transformers = quiet()
    torch.manual_seed(seed)
    config = transformers.VideoMAEConfig(**VIDEOMAE, attn_implementation="eager")
    return getattr(transformers, cls_name)(config).eval()


def vit(cls_name="ViTModel", seed=0):
    transformers = quiet()
    torch.manual_seed(seed)
    config = transformers.ViTConfig(**VIT, attn_implementation="eager")
    return getattr(transformers, cls_name)(config).eval()


def timm_vit(seed=0):
    import timm
    torch.manual_seed(seed)
    return timm.create_model(TIMM_NAME, img_size=TIMM_SIZE, pretrained=False).eval()


def save_videomae(directory, seed=0):
    """A checkpoint folder of a small random VideoMAEModel, as from_pretrained reads it."""
    videomae(seed=seed).save_pretrained(directory)
    return directory


def save_timm_vit(directory, seed=0):
    """A checkpoint folder of the small random timm ViT, as timm.create_model("local-dir:...") reads it."""
    from timm.models import save_for_hf
    save_for_hf(timm_vit(seed), directory, model_args={"img_size": TIMM_SIZE}, safe_serialization=True)
    return directory


def clips(n, shape, seed):
    """n random inputs of `shape` (one clip or image) with labels and ids, fixed by seed."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, *shape, generator=g), torch.arange(n) % 3, torch.arange(500, 500 + n)


def batches(n, batch, shape, seed=0):
    """(inputs, {'motion': labels}, clip_ids) in batches of `batch`, a list (iterable more than once)."""
    x, y, ids = clips(n, shape, seed)
    return [(x[i:i + batch], {"motion": y[i:i + batch]}, ids[i:i + batch].numpy()) for i in range(0, n, batch)]


def video_shape():
    return (VIDEOMAE["num_frames"], VIDEOMAE["num_channels"], VIDEOMAE["image_size"], VIDEOMAE["image_size"])


def image_shape(size):
    return (3, size, size)
