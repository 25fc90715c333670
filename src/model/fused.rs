//! The embedding heads as listening runs them: each batch norm folded into the
//! convolution before it, each convolution a matrix product, and an ensemble's members
//! side by side in one batched product. A window then costs a few dozen cheap
//! operations instead of ~80, 21 of them oneDNN convolutions at ~20 us each; the numbers
//! are the same up to float rounding (a test pins it).
use super::net::{ConvBn, Head, Net};
use tch::{Kind, Tensor};

/// tch's default batch-norm epsilon, which every `ConvBn` is built with.
const BN_EPS: f64 = 1e-5;

/// A convolution over time as a matrix product per member: `weight`
/// `[members, inputs * kernel, outputs]`, `bias` `[members, 1, outputs]`. Small
/// convolutions cost oneDNN ~20 us each whatever their size; a batched product of
/// the same numbers costs a few.
struct Conv {
    weight: Tensor,
    bias: Tensor,
    kernel: i64,
    stride: i64,
}

impl Conv {
    /// Each member's `ConvBn` with its batch norm folded in, stacked by member.
    fn fold(members: &[&ConvBn], stride: i64) -> Conv {
        let (mut ws, mut bs) = (Vec::new(), Vec::new());
        for cb in members {
            let (conv, bn) = cb.parts();
            let gamma = bn
                .ws
                .as_ref()
                .map_or_else(|| bn.running_var.ones_like(), |t| t.shallow_clone());
            let beta = bn
                .bs
                .as_ref()
                .map_or_else(|| bn.running_var.zeros_like(), |t| t.shallow_clone());
            let scale = gamma / (&bn.running_var + BN_EPS).sqrt();
            // [out, in, k] -> [in * k, out], in the order `unfold` lays windows out.
            let w = &conv.ws * scale.view([-1, 1, 1]);
            ws.push(w.flatten(1, 2).transpose(0, 1));
            let mut b = beta - &bn.running_mean * &scale;
            if let Some(cb) = &conv.bs {
                b += cb * &scale;
            }
            bs.push(b.unsqueeze(0));
        }
        Conv {
            kernel: members[0].parts().0.ws.size()[2],
            weight: Tensor::stack(&ws, 0),
            bias: Tensor::stack(&bs, 0),
            stride,
        }
    }

    /// `x` `[members, batch, steps, inputs]` -> `[members, batch, steps', outputs]`
    /// (padding kernel / 2 on each side, as `ConvBn`).
    fn forward(&self, x: &Tensor) -> Tensor {
        let s = x.size();
        let (m, n) = (s[0], s[1]);
        let pad = self.kernel / 2;
        let windows = x
            .constant_pad_nd([0, 0, pad, pad])
            .unfold(2, self.kernel, self.stride);
        let steps = windows.size()[2];
        let rows = windows.reshape([m, n * steps, -1]);
        (rows.bmm(&self.weight) + &self.bias).view([m, n, steps, -1])
    }
}

struct Block {
    a: Conv,
    b: Conv,
    shortcut: Conv,
}

/// An `embedding_head` model's members, fused for inference.
pub struct FusedHeads {
    stem: Conv,
    blocks: Vec<Block>,
    /// `[members, inputs, labels]` and `[members, 1, labels]`.
    fc_weight: Tensor,
    fc_bias: Tensor,
}

impl FusedHeads {
    /// None for other architectures (or a head without shortcuts, which the bundled
    /// recipe never makes).
    pub(super) fn new(net: &Net) -> Option<FusedHeads> {
        let Net::Heads(heads) = net else { return None };
        let all = |f: &dyn Fn(&Head) -> &ConvBn| heads.iter().map(f).collect::<Vec<_>>();
        let mut blocks = Vec::new();
        for i in 0..heads[0].blocks().len() {
            let shortcuts: Option<Vec<&ConvBn>> =
                heads.iter().map(|h| h.blocks()[i].shortcut()).collect();
            blocks.push(Block {
                a: Conv::fold(&all(&|h| h.blocks()[i].a()), 2),
                b: Conv::fold(&all(&|h| h.blocks()[i].b()), 1),
                shortcut: Conv::fold(&shortcuts?, 2),
            });
        }
        // The head flattens `[channels, steps]` channel by channel; here the values lie
        // step by step, so the output layer's columns are put in that order.
        let channels = blocks.last().map_or(0, |b| b.b.weight.size()[2]);
        let fc = |h: &Head| {
            let w = &h.fc().ws;
            let labels = w.size()[0];
            w.view([labels, channels, -1])
                .transpose(1, 2)
                .reshape([labels, -1])
                .transpose(0, 1)
        };
        let fc_bias = |h: &Head| match &h.fc().bs {
            Some(b) => b.unsqueeze(0),
            None => h.fc().ws.narrow(1, 0, 1).transpose(0, 1).zeros_like(),
        };
        Some(FusedHeads {
            stem: Conv::fold(&all(&|h| h.stem()), 1),
            blocks,
            fc_weight: Tensor::stack(&heads.iter().map(fc).collect::<Vec<_>>(), 0),
            fc_bias: Tensor::stack(&heads.iter().map(fc_bias).collect::<Vec<_>>(), 0),
        })
    }

    /// Normalised features `[batch, frames, bins]` -> probabilities `[batch, labels]`,
    /// as `Model::forward_t(xs, false).softmax(-1)` computes them.
    pub fn probabilities(&self, xs: &Tensor) -> Tensor {
        let members = self.fc_weight.size()[0];
        // Every member reads the same frames.
        let xs = xs.unsqueeze(0).expand([members, -1, -1, -1], false);
        let mut x = self.stem.forward(&xs).relu();
        for b in &self.blocks {
            let y = b.a.forward(&x).relu();
            let y = b.b.forward(&y);
            x = (y + b.shortcut.forward(&x)).relu();
        }
        let n = x.size()[1];
        let logits = x.reshape([members, n, -1]).bmm(&self.fc_weight) + &self.fc_bias;
        if members == 1 {
            return logits.squeeze_dim(0).softmax(-1, Kind::Float);
        }
        // As `net::ensemble`: the log of the members' mean probabilities.
        let mean = logits
            .softmax(-1, Kind::Float)
            .mean_dim(&[0i64][..], false, Kind::Float);
        (mean + 1e-12).log().softmax(-1, Kind::Float)
    }
}
