#!/usr/bin/env python3
"""Write randomly initialised BiRefNet weights with a published architecture, in the published
checkpoint layout, for benchmarks and full-size exactness checks where the real weights
(ZhengPeng7/BiRefNet_lite, ZhengPeng7/BiRefNet) are not downloaded. The cost of a forward pass
does not depend on the weight values.

    python scripts/birefnet_random_weights.py --birefnet-src /path/to/BiRefNet --out DIR \
        [--size lite|general] [--seed N] [--dump IMAGE] [--threads 2]

--birefnet-src is a checkout of https://github.com/ZhengPeng7/BiRefNet at 25cb930; it is copied
to a temporary folder and imported from there (nothing of it is written to DIR). --size lite is
BiRefNet_lite (bb swin_v1_t: config.py's backbone index 3 -> 6, which is what the authors'
notebook says to do for the lite model); general is the repository's default (swin_v1_l). All
other settings are config.py's defaults (task DIS5K), the widths unpatched.

Writes into DIR:
    model.safetensors   the full state_dict() (keys as the published model.safetensors: bb.*,
                        squeeze_module.*, decoder.*, int64 relative_position_index and
                        num_batches_tracked buffers included), float32 otherwise
    config.json         like the HF repos' config.json (architectures, auto_map, bb_pretrained)
                        plus an "orfeas_random" record of how the weights were made
and with --dump IMAGE, reference.safetensors (float32): `pixels` [1,3,1024,1024] (the notebook's
preprocessing: Resize((1024,1024)), ToTensor, Normalize(ImageNet)), `swin_full.{0..3}`,
`squeezed`, `logits` [1,1,1024,1024] (model(x)[-1]) and `probability` (sigmoid), plus mask.png
(the notebook's ToPILImage + resize to the image size, PIL's default BICUBIC for mode L).

Initialisation: the authors' own (PyTorch defaults; trunc_normal(0.02) for the relative
position bias tables; zeros for the offset and modulator convs), then, so that a port that
drops or swaps a tensor shows it and activations stay O(1): conv/linear weights N(0, 1/fan_in),
biases N(0, 0.05^2); LayerNorm weight N(1, 0.1^2), bias N(0, 0.05^2); BatchNorm weight
U(0.8, 1.2), bias N(0, 0.1^2), running_mean N(0, 0.1^2), running_var U(0.5, 1.5);
relative_position_bias_table N(0, 0.1^2); offset convs N(0, 0.3^2/fan_in) with bias
N(0, 0.3^2) (offsets a fraction of a pixel to about a pixel); modulator convs N(0, 0.3^2/fan_in),
bias N(0, 0.3^2). Deterministic for a given --seed.
Needs torch, torchvision, numpy, pillow, safetensors, einops, timm, huggingface_hub.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import types
from pathlib import Path

import torch
import torch.nn as nn

AUTHORS_COMMIT = '25cb9309bacf3dde954e4584594e16e142c51de5'
CONFIG_BB_OLD = "'dino_v3_b', 'dino_v3_s_plus', 'dino_v3_s',\n        ][3]"
BB_INDEX = {'lite': 6, 'general': 3}      # swin_v1_t, swin_v1_l in config.py's list
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def import_birefnet(src, size='lite'):
    """Copy the authors' source to a temporary folder, set the backbone for `size`, chdir there
    and import models.birefnet. Returns (module, tmp_dir); the caller may delete tmp_dir once the
    model is built. Only training-time imports are stubbed: kornia (laplacian, used only when
    training with out_ref) and dataset (class labels, only for auxiliary_classification; the
    real one needs cv2). Config() lists '.' and '..' for train.sh, hence the chdir."""
    src = Path(src).resolve()
    tmp = Path(tempfile.mkdtemp(prefix='birefnet_src_'))
    dst = tmp / 'BiRefNet'
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns('.git'))
    cfg = (dst / 'config.py').read_text()
    assert cfg.count(CONFIG_BB_OLD) == 1, 'unexpected config.py (not 25cb930?)'
    new = CONFIG_BB_OLD.replace('][3]', f'][{BB_INDEX[size]}]')
    (dst / 'config.py').write_text(cfg.replace(CONFIG_BB_OLD, new))

    kornia = types.ModuleType('kornia')
    kornia.filters = types.ModuleType('kornia.filters')

    def _laplacian(*a, **k):
        raise RuntimeError('kornia stub: training only')
    kornia.filters.laplacian = _laplacian
    dataset = types.ModuleType('dataset')
    dataset.class_labels_TR_sorted = []
    sys.modules.update({'kornia': kornia, 'kornia.filters': kornia.filters, 'dataset': dataset})
    os.chdir(dst)
    sys.path.insert(0, str(dst))
    import models.birefnet as birefnet_mod
    return birefnet_mod, tmp


def build_model(src, size='lite'):
    cwd = os.getcwd()
    birefnet_mod, tmp = import_birefnet(src, size)
    try:
        model = birefnet_mod.BiRefNet(bb_pretrained=False)
    finally:
        os.chdir(cwd)
        shutil.rmtree(tmp, ignore_errors=True)
    return model.eval()


def randomise(model, seed):
    gen = torch.Generator().manual_seed(seed)

    def normal(shape, std, mean=0.0):
        return torch.randn(shape, generator=gen) * std + mean

    with torch.no_grad():
        for name, mod in model.named_modules():
            if isinstance(mod, (nn.Conv2d, nn.Linear)):
                fan_in = mod.weight[0].numel()
                small = name.endswith('offset_conv') or name.endswith('modulator_conv')
                mod.weight.copy_(normal(mod.weight.shape, (0.3 if small else 1.0) / fan_in ** 0.5))
                if mod.bias is not None:
                    mod.bias.copy_(normal(mod.bias.shape, 0.3 if small else 0.05))
            elif isinstance(mod, nn.LayerNorm):
                mod.weight.copy_(normal(mod.weight.shape, 0.1, 1.0))
                mod.bias.copy_(normal(mod.bias.shape, 0.05))
            elif isinstance(mod, nn.BatchNorm2d):
                mod.weight.copy_(torch.rand(mod.weight.shape, generator=gen) * 0.4 + 0.8)
                mod.bias.copy_(normal(mod.bias.shape, 0.1))
                mod.running_mean.copy_(normal(mod.running_mean.shape, 0.1))
                mod.running_var.copy_(torch.rand(mod.running_var.shape, generator=gen) + 0.5)
            if hasattr(mod, 'relative_position_bias_table'):
                t = mod.relative_position_bias_table
                t.copy_(normal(t.shape, 0.1))


def hf_config(size, seed):
    return {
        '_name_or_path': {'lite': 'ZhengPeng7/BiRefNet_lite', 'general': 'ZhengPeng7/BiRefNet'}[size],
        'architectures': ['BiRefNet'],
        'auto_map': {
            'AutoConfig': 'BiRefNet_config.BiRefNetConfig',
            'AutoModelForImageSegmentation': 'birefnet.BiRefNet',
        },
        'custom_pipelines': {
            'image-segmentation': {'pt': ['AutoModelForImageSegmentation'], 'tf': [], 'type': 'image'},
        },
        'torch_dtype': 'float32',
        'bb_pretrained': False,
        'orfeas_random': {
            'note': 'random weights, not trained; see scripts/birefnet_random_weights.py',
            'authors_commit': AUTHORS_COMMIT,
            'bb': {'lite': 'swin_v1_t', 'general': 'swin_v1_l'}[size],
            'seed': seed,
            'input_size': [1024, 1024],
        },
    }


def preprocess(image, size=1024):
    """The authors' tutorials/BiRefNet_inference.ipynb preprocessing."""
    from torchvision import transforms
    image = image.convert('RGB') if image.mode != 'RGB' else image
    transform_image = transforms.Compose([
        transforms.Resize((size, size)),
        transforms.ToTensor(),
        transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])
    return transform_image(image).unsqueeze(0)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--birefnet-src', required=True, type=Path)
    ap.add_argument('--out', required=True, type=Path)
    ap.add_argument('--size', choices=['lite', 'general'], default='lite')
    ap.add_argument('--seed', type=int, default=15)
    ap.add_argument('--dump', type=Path, help='an image: write reference.safetensors and mask.png for it at 1024x1024')
    ap.add_argument('--threads', type=int, default=2)
    args = ap.parse_args()
    out = args.out.resolve()
    dump = args.dump.resolve() if args.dump else None
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    from safetensors.torch import save_file
    model = build_model(args.birefnet_src, args.size)
    randomise(model, args.seed)
    sd = model.state_dict()
    n_params = sum(p.numel() for p in model.parameters())
    print(f'{args.size}: bb {model.config.bb}, {n_params} parameters, {len(sd)} state-dict tensors')
    save_file({k: v.detach().clone().contiguous() for k, v in sd.items()}, str(out / 'model.safetensors'),
              metadata={'format': 'pt'})
    (out / 'config.json').write_text(json.dumps(hf_config(args.size, args.seed), indent=2) + '\n')

    if dump:
        from PIL import Image
        from torchvision import transforms
        image = Image.open(dump)
        image = image.convert('RGB') if image.mode != 'RGB' else image
        x = preprocess(image)
        rec = {}
        bb_calls = []
        hooks = [model.bb.register_forward_hook(lambda m, a, o: bb_calls.append(o)),
                 model.squeeze_module.register_forward_hook(lambda m, a, o: rec.__setitem__('squeezed', o))]
        with torch.no_grad():
            logits = model(x)[-1]
        for h in hooks:
            h.remove()
        ref = {'pixels': x, 'logits': logits, 'probability': logits.sigmoid(), 'squeezed': rec['squeezed']}
        for i, t in enumerate(bb_calls[0]):
            ref[f'swin_full.{i}'] = t
        save_file({k: v.float().contiguous() for k, v in ref.items()}, str(out / 'reference.safetensors'),
                  metadata={'format': 'pt', 'image': dump.name})
        pred_pil = transforms.ToPILImage()(ref['probability'][0].squeeze())
        pred_pil.resize(image.size).save(out / 'mask.png')
        p = ref['probability']
        print(f'logits mean {logits.mean():+.3f} std {logits.std():.3f}; probability min {p.min():.3f} '
              f'max {p.max():.3f}, share > 0.5 {(p > 0.5).float().mean():.3f}')
    print('wrote', out)


if __name__ == '__main__':
    main()
