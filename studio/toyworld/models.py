"""Configurations of the toy-world model family (standard diffusers / transformers classes only)."""

from __future__ import annotations

from .vocab import BOS, EOS, MAX_LENGTH

LATENT_CHANNELS = 4
VAE_SCALE = 4  # 64x64 image -> 16x16 latent

SCHEDULER_CONFIG = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    prediction_type="v_prediction",
    rescale_betas_zero_snr=True,
    timestep_spacing="trailing",
    steps_offset=1,
)


def make_vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(32, 64, 64),
        layers_per_block=1,
        latent_channels=LATENT_CHANNELS,
        norm_num_groups=16,
        sample_size=64,
        mid_block_add_attention=False,
    )


def make_text_encoder(vocab_size: int, bos_id: int, eos_id: int, max_length: int = MAX_LENGTH):
    from transformers import CLIPTextConfig, CLIPTextModel

    cfg = CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=max_length,
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        pad_token_id=eos_id,
        projection_dim=64,
    )
    return CLIPTextModel(cfg)


def make_unet():
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=64 // VAE_SCALE,
        in_channels=LATENT_CHANNELS,
        out_channels=LATENT_CHANNELS,
        # no attention at 16x16 (slow on the CPU); cross-attention at 8x8, 4x4 and in the 4x4 mid-block
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        block_out_channels=(32, 64, 128),
        layers_per_block=1,
        cross_attention_dim=64,
        attention_head_dim=8,
        norm_num_groups=16,
        # The caption, attention-pooled, also scales and shifts every ResNet block's channels (FiLM): a
        # direct path from a position or shape word to features that know where they are (from the
        # convolutions' zero padding). Added with the timestep and loss changes in train.py that made
        # position learnable; whether this one was needed was not isolated (see the README).
        addition_embed_type="text",
        resnet_time_scale_shift="scale_shift",
    )


def make_controlnet(unet):
    from diffusers import ControlNetModel

    # one stride-2 conv per halving: (16, 32, 64) -> x4, matching the VAE
    return ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(16, 32, 64))


def make_train_scheduler():
    from diffusers import DDPMScheduler

    return DDPMScheduler(**SCHEDULER_CONFIG)


def make_inference_scheduler():
    from diffusers import EulerDiscreteScheduler

    return EulerDiscreteScheduler(**SCHEDULER_CONFIG)


__all__ = ["BOS", "EOS"]
