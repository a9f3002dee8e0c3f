/// Limited-memory BFGS for smooth unconstrained minimisation (Nocedal & Wright, *Numerical Optimization*,
/// 2nd ed., Algorithm 7.4 / 7.5), with a line search for the strong Wolfe conditions (Algorithms 3.5 / 3.6,
/// cubic interpolation in the zoom phase).
///
/// Search direction d = −H·g by the two-loop recursion over the last `memory` pairs
/// sₖ = xₖ₊₁ − xₖ, yₖ = gₖ₊₁ − gₖ, initial Hessian scaling γ = sᵀy / yᵀy of the newest pair (the first step
/// is steepest descent with length 1/‖g‖₂). A pair enters the memory only when sᵀy > 0 (curvature condition).
///
/// Stopping (reported as `converged`), the two tests of L-BFGS-B (Byrd, Lu, Nocedal & Zhu 1995) as SciPy
/// runs them:
/// - gradient: max |gᵢ| ≤ `gradientTolerance` (absolute; SciPy's `gtol`), or
/// - small decrease: (fₖ − fₖ₊₁) ≤ `functionTolerance` · max(1, |fₖ|, |fₖ₊₁|) (SciPy's `ftol`, which is
///   L-BFGS-B's `factr` · ε).
/// Running out of iterations, or a line search that finds no decrease even along −g, stops without
/// convergence.
struct LBFGS {
    var memory = 10
    var maxIterations = 1000
    var gradientTolerance = ProbeOptions.scikitLearnTolerance
    var functionTolerance = ProbeOptions.scipyFunctionTolerance
    /// Function evaluations allowed per line search.
    var maxLineSearchEvaluations = 50
    /// Sufficient-decrease (Armijo) and curvature constants of the strong Wolfe conditions.
    var c1 = 1e-4
    var c2 = 0.9

    struct Result {
        var x: [Double]
        var value: Double
        var gradient: [Double]
        /// Completed iterations (accepted steps).
        var iterations: Int
        var converged: Bool
        var evaluations: Int
    }

    /// Minimises f from `start`; `objective(x, &gradient)` returns f(x) and writes ∇f(x) into `gradient`
    /// (which has x's length).
    ///
    /// - Complexity: per iteration O(memory · n) plus the objective evaluations of the line search.
    func minimize(start: [Double], objective: ([Double], inout [Double]) -> Double) -> Result {
        let n = start.count
        var x = start
        var g = [Double](repeating: 0, count: n)
        var f = objective(x, &g)
        var evaluations = 1
        var iterations = 0
        var sList: [[Double]] = [], yList: [[Double]] = [], rhoList: [Double] = []

        func gradientSmall(_ f: Double, _ g: [Double]) -> Bool {
            maxAbs(g) <= gradientTolerance
        }
        guard f.isFinite else {
            return Result(x: x, value: f, gradient: g, iterations: 0, converged: false, evaluations: evaluations)
        }
        if gradientSmall(f, g) {
            return Result(x: x, value: f, gradient: g, iterations: 0, converged: true, evaluations: evaluations)
        }

        var converged = false
        while iterations < maxIterations {
            var d = direction(gradient: g, s: sList, y: yList, rho: rhoList)
            var slope = dot(g, d)
            if !(slope < 0) {  // not a descent direction (rounding): restart from steepest descent
                sList.removeAll(); yList.removeAll(); rhoList.removeAll()
                d = g.map { -$0 }
                slope = dot(g, d)
            }
            let firstStep = sList.isEmpty ? min(1, 1 / norm2(g)) : 1
            var step = lineSearch(x: x, f: f, slope: slope, direction: d, initialStep: firstStep, objective: objective)
            evaluations += step.evaluations
            if step.point == nil && !sList.isEmpty {
                // The quasi-Newton direction failed; forget the memory and try steepest descent once.
                sList.removeAll(); yList.removeAll(); rhoList.removeAll()
                d = g.map { -$0 }
                slope = dot(g, d)
                step = lineSearch(x: x, f: f, slope: slope, direction: d, initialStep: min(1, 1 / norm2(g)),
                                  objective: objective)
                evaluations += step.evaluations
            }
            guard let accepted = step.point else { break }

            var s = [Double](repeating: 0, count: n), y = s
            for i in 0..<n {
                s[i] = accepted.x[i] - x[i]
                y[i] = accepted.g[i] - g[i]
            }
            let sy = dot(s, y)
            if sy > Double.ulpOfOne * dot(y, y) && sy > 0 {
                sList.append(s); yList.append(y); rhoList.append(1 / sy)
                if sList.count > memory { sList.removeFirst(); yList.removeFirst(); rhoList.removeFirst() }
            }
            let decrease = f - accepted.f
            let scale = max(1, abs(f), abs(accepted.f))
            x = accepted.x; f = accepted.f; g = accepted.g
            iterations += 1
            if gradientSmall(f, g) || decrease <= functionTolerance * scale {
                converged = true
                break
            }
        }
        return Result(x: x, value: f, gradient: g, iterations: iterations, converged: converged, evaluations: evaluations)
    }

    /// d = −H·g by the two-loop recursion.
    private func direction(gradient g: [Double], s: [[Double]], y: [[Double]], rho: [Double]) -> [Double] {
        var q = g
        let m = s.count
        var alpha = [Double](repeating: 0, count: m)
        for i in stride(from: m - 1, through: 0, by: -1) {
            alpha[i] = rho[i] * dot(s[i], q)
            axpy(-alpha[i], y[i], &q)
        }
        if m > 0 {
            let gamma = dot(s[m - 1], y[m - 1]) / dot(y[m - 1], y[m - 1])
            for i in q.indices { q[i] *= gamma }
        }
        for i in 0..<m {
            let beta = rho[i] * dot(y[i], q)
            axpy(alpha[i] - beta, s[i], &q)
        }
        for i in q.indices { q[i] = -q[i] }
        return q
    }

    /// One evaluated trial point along the search line.
    private struct Trial {
        var step: Double
        var f: Double
        var slope: Double
        var x: [Double]
        var g: [Double]
    }

    /// Strong-Wolfe line search (Nocedal & Wright Alg. 3.5 with zoom Alg. 3.6). Returns the accepted point,
    /// or nil when no step with sufficient decrease was found. If the evaluation budget runs out after a
    /// step with sufficient decrease (Armijo) was seen, that step is returned.
    private func lineSearch(x: [Double], f f0: Double, slope slope0: Double, direction d: [Double], initialStep: Double,
                            objective: ([Double], inout [Double]) -> Double) -> (point: Trial?, evaluations: Int) {
        var evaluations = 0
        func evaluate(_ a: Double) -> Trial {
            var xt = x
            axpy(a, d, &xt)
            var gt = [Double](repeating: 0, count: x.count)
            let ft = objective(xt, &gt)
            evaluations += 1
            return Trial(step: a, f: ft.isNaN ? .infinity : ft, slope: dot(gt, d), x: xt, g: gt)
        }
        func armijo(_ t: Trial) -> Bool { t.f <= f0 + c1 * t.step * slope0 }
        func curvature(_ t: Trial) -> Bool { abs(t.slope) <= -c2 * slope0 }

        // Zoom between lo (satisfies Armijo, lowest f so far; step 0 allowed) and hi.
        func zoom(_ loIn: Trial?, _ loStep: Double, _ loF: Double, _ loSlope: Double, _ hiIn: Trial) -> Trial? {
            var lo = loIn, loA = loStep, loFv = loF, loD = loSlope
            var hiA = hiIn.step, hiF = hiIn.f, hiD = hiIn.slope
            while evaluations < maxLineSearchEvaluations {
                let width = abs(hiA - loA)
                if width <= 1e-15 * max(loA, hiA) { break }
                var a = cubicMinimizer(loA, loFv, loD, hiA, hiF, hiD)
                let lower = min(loA, hiA) + 0.1 * width, upper = max(loA, hiA) - 0.1 * width
                if !(a.isFinite && a >= lower && a <= upper) { a = 0.5 * (loA + hiA) }
                let t = evaluate(a)
                if !armijo(t) || t.f >= loFv {
                    hiA = a; hiF = t.f; hiD = t.slope
                } else {
                    if curvature(t) { return t }
                    if t.slope * (hiA - loA) >= 0 { hiA = loA; hiF = loFv; hiD = loD }
                    lo = t; loA = a; loFv = t.f; loD = t.slope
                }
            }
            return lo
        }

        var previous: Trial? = nil
        var prevA = 0.0, prevF = f0, prevD = slope0
        var a = initialStep
        while evaluations < maxLineSearchEvaluations {
            let t = evaluate(a)
            if !armijo(t) || (previous != nil && t.f >= prevF) {
                return (zoom(previous, prevA, prevF, prevD, t), evaluations)
            }
            if curvature(t) { return (t, evaluations) }
            if t.slope >= 0 {
                // Minimum bracketed between t and the previous point: zoom with t as the low end.
                let hi = previous ?? Trial(step: 0, f: f0, slope: slope0, x: x, g: [])
                return (zoom(t, t.step, t.f, t.slope, hi), evaluations)
            }
            previous = t; prevA = a; prevF = t.f; prevD = t.slope
            a *= 4
        }
        return (previous, evaluations)
    }
}

/// Minimiser of the cubic interpolating φ and φ′ at a and b (Nocedal & Wright eq. 3.59); NaN when it has none.
private func cubicMinimizer(_ a: Double, _ fa: Double, _ da: Double, _ b: Double, _ fb: Double, _ db: Double) -> Double {
    guard fa.isFinite, fb.isFinite, da.isFinite, db.isFinite, a != b else { return .nan }
    let d1 = da + db - 3 * (fa - fb) / (a - b)
    let disc = d1 * d1 - da * db
    guard disc >= 0 else { return .nan }
    let d2 = (b > a ? 1.0 : -1.0) * disc.squareRoot()
    let denominator = db - da + 2 * d2
    guard denominator != 0 else { return .nan }
    return b - (b - a) * (db + d2 - d1) / denominator
}

/// Σ aᵢbᵢ for two equally long float64 vectors (four partial sums); used across this module.
@inline(__always) func dot(_ a: [Double], _ b: [Double]) -> Double {
    a.withUnsafeBufferPointer { pa in
        b.withUnsafeBufferPointer { pb in
            var s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
            let n = pa.count
            var i = 0
            while i + 4 <= n {
                s0 += pa[i] * pb[i]; s1 += pa[i + 1] * pb[i + 1]
                s2 += pa[i + 2] * pb[i + 2]; s3 += pa[i + 3] * pb[i + 3]
                i += 4
            }
            while i < n { s0 += pa[i] * pb[i]; i += 1 }
            return (s0 + s1) + (s2 + s3)
        }
    }
}

/// y += a·x.
@inline(__always) private func axpy(_ a: Double, _ x: [Double], _ y: inout [Double]) {
    x.withUnsafeBufferPointer { px in
        y.withUnsafeMutableBufferPointer { py in
            for i in 0..<py.count { py[i] += a * px[i] }
        }
    }
}

@inline(__always) private func norm2(_ a: [Double]) -> Double { dot(a, a).squareRoot() }

@inline(__always) private func maxAbs(_ a: [Double]) -> Double { a.reduce(0) { max($0, abs($1)) } }
