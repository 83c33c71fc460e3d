//! Where the model runs and in which precision.
//!
//! The CPU computes in f32. CUDA (built with the `cuda` feature) computes in bf16 with f32
//! master weights and f32 optimizer moments; LayerNorm, softmax and the loss run in f32.

use candle_core::{DType, Device};

use crate::config::DeviceChoice;
use crate::error::{Result, TrainError};

/// Dense bf16 peak of an H100 or H200 SXM (FLOP/s), the default for MFU on CUDA.
pub const H100_BF16_PEAK: f64 = 989e12;

/// The device and compute dtype for a choice.
pub fn select(choice: DeviceChoice) -> Result<(Device, DType)> {
    match choice {
        DeviceChoice::Cpu => Ok((Device::Cpu, DType::F32)),
        DeviceChoice::Cuda => cuda(),
        DeviceChoice::Auto if candle_core::utils::cuda_is_available() => cuda(),
        DeviceChoice::Auto => Ok((Device::Cpu, DType::F32)),
    }
}

fn cuda() -> Result<(Device, DType)> {
    if !candle_core::utils::cuda_is_available() {
        return Err(TrainError::Device(
            "this binary was built without the `cuda` feature (see README: Training on a GPU)"
                .into(),
        ));
    }
    let device = Device::new_cuda(0).map_err(|e| TrainError::Device(format!("CUDA GPU 0: {e}")))?;
    Ok((device, DType::BF16))
}

/// The peak FLOP/s used for MFU: the configured one, else the H100/H200 bf16 peak on CUDA; none
/// on the CPU (no MFU is reported there).
pub fn peak_flops(device: &Device, configured: Option<f64>) -> Option<f64> {
    configured.or(device.is_cuda().then_some(H100_BF16_PEAK))
}

/// A short name of the device for logs.
pub fn describe(device: &Device, dtype: DType) -> String {
    let kind = if device.is_cuda() { "cuda:0" } else { "cpu" };
    format!("{kind} ({dtype:?} compute)")
}
