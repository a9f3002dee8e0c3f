import LinearAlgebra

/// Cached activations of one pre-LayerNorm transformer layer for a batch (what the backward needs).
final class LayerCache {
    let batch: Int, tokens: Int, dim: Int, heads: Int, hidden: Int
    var rows: Int { batch * tokens }
    let ln1, ln1Mean, ln1Rstd, qkv, att, atty, x1, ln2, ln2Mean, ln2Rstd, h, g: Buffer

    init(batch: Int, tokens: Int, dim: Int, heads: Int, hidden: Int) {
        self.batch = batch
        self.tokens = tokens
        self.dim = dim
        self.heads = heads
        self.hidden = hidden
        let r = batch * tokens
        ln1 = Buffer(r * dim); ln1Mean = Buffer(r); ln1Rstd = Buffer(r)
        qkv = Buffer(r * 3 * dim); att = Buffer(batch * heads * tokens * tokens); atty = Buffer(r * dim)
        x1 = Buffer(r * dim); ln2 = Buffer(r * dim); ln2Mean = Buffer(r); ln2Rstd = Buffer(r)
        h = Buffer(r * hidden); g = Buffer(r * hidden)
    }
}

/// Gradient scratch shared by the layers of one width (the backward runs one layer at a time).
final class LayerScratch {
    let dln, dqkv, datt, datty, dx1, dh, dg: Buffer

    init(rows: Int, dim: Int, hidden: Int, attention: Int) {
        dln = Buffer(rows * dim); dqkv = Buffer(rows * 3 * dim); datt = Buffer(attention)
        datty = Buffer(rows * dim); dx1 = Buffer(rows * dim); dh = Buffer(rows * hidden); dg = Buffer(rows * hidden)
    }
}

/// One pre-LayerNorm layer: x1 = x + Proj(Attn(LN₁(x))), out = x1 + FC₂(GELU(FC₁(LN₂(x1)))).
enum TransformerLayer {
    static func forward(_ o: LayerOffsets, params p: UnsafeMutablePointer<Float>, cache c: LayerCache,
                        input x: UnsafeMutablePointer<Float>, output out: UnsafeMutablePointer<Float>) {
        let r = c.rows, d = c.dim, hd = c.dim / c.heads
        Kernels.layerNormForward(out: c.ln1.p, mean: c.ln1Mean.p, rstd: c.ln1Rstd.p, inp: x,
                                 weight: p + o.ln1w, bias: p + o.ln1b, rows: r, dim: d)
        Kernels.linearForward(out: c.qkv.p, inp: c.ln1.p, weight: p + o.qkvw, bias: p + o.qkvb, rows: r, inDim: d, outDim: 3 * d)
        Kernels.attentionForward(out: c.atty.p, att: c.att.p, qkv: c.qkv.p, batch: c.batch, tokens: c.tokens, heads: c.heads, headDim: hd)
        Kernels.linearForward(out: c.x1.p, inp: c.atty.p, weight: p + o.projw, bias: p + o.projb, rows: r, inDim: d, outDim: d)
        Kernels.residualForward(out: c.x1.p, a: x, b: c.x1.p, count: r * d)
        Kernels.layerNormForward(out: c.ln2.p, mean: c.ln2Mean.p, rstd: c.ln2Rstd.p, inp: c.x1.p,
                                 weight: p + o.ln2w, bias: p + o.ln2b, rows: r, dim: d)
        Kernels.linearForward(out: c.h.p, inp: c.ln2.p, weight: p + o.fc1w, bias: p + o.fc1b, rows: r, inDim: d, outDim: c.hidden)
        Kernels.geluForward(out: c.g.p, inp: c.h.p, count: r * c.hidden)
        Kernels.linearForward(out: out, inp: c.g.p, weight: p + o.fc2w, bias: p + o.fc2b, rows: r, inDim: c.hidden, outDim: d)
        Kernels.residualForward(out: out, a: c.x1.p, b: out, count: r * d)
    }

    /// Accumulates into `dinput` and the parameter gradients `grads`, given `doutput`.
    static func backward(_ o: LayerOffsets, params p: UnsafeMutablePointer<Float>, grads gr: UnsafeMutablePointer<Float>,
                         cache c: LayerCache, scratch s: LayerScratch, input x: UnsafeMutablePointer<Float>,
                         doutput dout: UnsafeMutablePointer<Float>, dinput dx: UnsafeMutablePointer<Float>) {
        let r = c.rows, d = c.dim, hd = c.dim / c.heads, hid = c.hidden
        // out = x1 + FC2(g)
        s.dg.zero(r * hid)
        Kernels.linearBackward(dinp: s.dg.p, dweight: gr + o.fc2w, dbias: gr + o.fc2b, dout: dout, inp: c.g.p,
                               weight: p + o.fc2w, rows: r, inDim: hid, outDim: d)
        s.dh.zero(r * hid)
        Kernels.geluBackward(dinp: s.dh.p, inp: c.h.p, dout: s.dg.p, count: r * hid)
        s.dln.zero(r * d)
        Kernels.linearBackward(dinp: s.dln.p, dweight: gr + o.fc1w, dbias: gr + o.fc1b, dout: s.dh.p, inp: c.ln2.p,
                               weight: p + o.fc1w, rows: r, inDim: d, outDim: hid)
        s.dx1.p.update(from: dout, count: r * d)
        Kernels.layerNormBackward(dinp: s.dx1.p, dweight: gr + o.ln2w, dbias: gr + o.ln2b, dout: s.dln.p, inp: c.x1.p,
                                  weight: p + o.ln2w, mean: c.ln2Mean.p, rstd: c.ln2Rstd.p, rows: r, dim: d)
        // x1 = x + Proj(atty)
        s.datty.zero(r * d)
        Kernels.linearBackward(dinp: s.datty.p, dweight: gr + o.projw, dbias: gr + o.projb, dout: s.dx1.p, inp: c.atty.p,
                               weight: p + o.projw, rows: r, inDim: d, outDim: d)
        s.dqkv.zero(r * 3 * d)
        Kernels.attentionBackward(dqkv: s.dqkv.p, datt: s.datt.p, dout: s.datty.p, qkv: c.qkv.p, att: c.att.p,
                                  batch: c.batch, tokens: c.tokens, heads: c.heads, headDim: hd)
        s.dln.zero(r * d)
        Kernels.linearBackward(dinp: s.dln.p, dweight: gr + o.qkvw, dbias: gr + o.qkvb, dout: s.dqkv.p, inp: c.ln1.p,
                               weight: p + o.qkvw, rows: r, inDim: d, outDim: 3 * d)
        Kernels.layerNormBackward(dinp: dx, dweight: gr + o.ln1w, dbias: gr + o.ln1b, dout: s.dln.p, inp: x,
                                  weight: p + o.ln1w, mean: c.ln1Mean.p, rstd: c.ln1Rstd.p, rows: r, dim: d)
        accumulate(dx, s.dx1.p, r * d)
    }
}

/// dst += src, elementwise (split over the cores when long).
@inline(__always) func accumulate(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, _ n: Int) {
    Parallel.forEachRange(n, grain: 4 * Kernels.elementGrain) { range in
        for i in range { dst[i] += src[i] }
    }
}
