//! Finding the document in the small detection image: Canny edges → connected edge chains →
//! convex hull → largest inscribed quadrilateral → each side refitted to its edge pixels (sub-pixel
//! least squares) → checked (convex, near-rectangular angles, size, edge support and contrast on
//! every side not on the frame border). A second candidate comes from Otsu's threshold (the
//! largest bright region). The largest valid quadrilateral wins; none means no document.

use super::edges::{Edges, canny, otsu};
use super::geom::{Pt, corner_angles, dist, is_convex, signed_area};
use super::plane::Plane;

/// Canny thresholds on |gx| + |gy| of the smoothed image (a 255-level step gives ~1000).
const LOW: u16 = 28;
const HIGH: u16 = 56;
/// A document covers at least this share of the frame.
const MIN_AREA: f64 = 0.08;

/// What detection found, in the small image's continuous coordinates.
#[derive(Debug, Clone)]
pub struct Found {
    pub quad: [Pt; 4],
}

/// `smoothed` is the detection image after [`super::edges::smooth`].
pub fn detect(smoothed: &Plane) -> Option<Found> {
    let (w, h) = (smoothed.w, smoothed.h);
    if w < 32 || h < 32 {
        return None;
    }
    let edges = canny(smoothed, LOW, HIGH);
    let mut candidates: Vec<[Pt; 4]> = Vec::new();
    let min_extent = 0.2 * w.min(h) as f64;
    let mut regions = components(&edges);
    regions.extend(bright_region(smoothed));
    for region in &regions {
        candidates.extend(hull_quads(region, min_extent));
    }
    // Refining costs time on textured backgrounds with many edge chains: only the largest few
    // outlines that could be a document are refined and checked.
    let min_area = 0.5 * MIN_AREA * (w * h) as f64;
    let (fw, fh) = (w as f64, h as f64);
    let near_frame =
        |p: &Pt| p.0 > -0.1 * fw && p.1 > -0.1 * fh && p.0 < 1.1 * fw && p.1 < 1.1 * fh;
    candidates.retain(|q| signed_area(q).abs() >= min_area && q.iter().all(near_frame));
    candidates.sort_by(|a, b| signed_area(b).abs().total_cmp(&signed_area(a).abs()));
    candidates.truncate(12);
    // The largest valid outline, preferring outlines seen on all four sides: a region bounded
    // partly by the frame's edge (a shadow, a page cut off) counts for less.
    let mut best: Option<(f64, Found)> = None;
    for q in candidates {
        let q = refine(&edges, q);
        if let Some(real_sides) = validate(smoothed, &edges, &q) {
            let weight = match real_sides {
                4 => 1.0,
                3 => 0.45,
                _ => 0.25,
            };
            let score = signed_area(&q).abs() * weight;
            if best.as_ref().is_none_or(|(b, _)| score > *b) {
                best = Some((score, Found { quad: q }));
            }
        }
    }
    best.map(|(_, f)| f)
}

/// Pixels of each chain of edge pixels, linking across gaps of one pixel; long chains only.
fn components(e: &Edges) -> Vec<Vec<(i32, i32)>> {
    let (w, h) = (e.w, e.h);
    let min_len = (w.min(h) / 4).max(16);
    let mut seen = vec![false; w * h];
    let mut out = Vec::new();
    let mut stack = Vec::new();
    for start in 0..w * h {
        if !e.edge[start] || seen[start] {
            continue;
        }
        seen[start] = true;
        stack.push(start);
        let mut pts = Vec::new();
        while let Some(j) = stack.pop() {
            let (x, y) = ((j % w) as isize, (j / w) as isize);
            pts.push((x as i32, y as i32));
            for ny in (y - 2).max(0)..=(y + 2).min(h as isize - 1) {
                for nx in (x - 2).max(0)..=(x + 2).min(w as isize - 1) {
                    let k = ny as usize * w + nx as usize;
                    if e.edge[k] && !seen[k] {
                        seen[k] = true;
                        stack.push(k);
                    }
                }
            }
        }
        if pts.len() >= min_len {
            out.push(pts);
        }
    }
    out
}

/// The largest bright 4-connected region above Otsu's threshold (paper on a darker ground),
/// after a morphological opening that cuts off thin things touching it (pens, cables).
fn bright_region(s: &Plane) -> Option<Vec<(i32, i32)>> {
    let t = otsu(s);
    let (w, h) = (s.w, s.h);
    let bright: Vec<bool> = s.data.iter().map(|&v| v > t).collect();
    let r = (w.min(h) / 80).max(3);
    let mask = dilate(&erode(&bright, w, h, r), w, h, r);
    let mut seen = vec![false; w * h];
    let mut best: Vec<(i32, i32)> = Vec::new();
    let mut stack = Vec::new();
    for start in 0..w * h {
        if seen[start] || !mask[start] {
            continue;
        }
        seen[start] = true;
        stack.push(start);
        let mut boundary = Vec::new();
        let mut count = 0usize;
        while let Some(j) = stack.pop() {
            count += 1;
            let (x, y) = (j % w, j / w);
            let mut edge = false;
            for (nx, ny) in [
                (x.wrapping_sub(1), y),
                (x + 1, y),
                (x, y.wrapping_sub(1)),
                (x, y + 1),
            ] {
                if nx >= w || ny >= h {
                    edge = true;
                    continue;
                }
                let k = ny * w + nx;
                if !mask[k] {
                    edge = true;
                } else if !seen[k] {
                    seen[k] = true;
                    stack.push(k);
                }
            }
            if edge {
                boundary.push((x as i32, y as i32));
            }
        }
        if count as f64 >= MIN_AREA * (w * h) as f64 && boundary.len() > best.len() {
            best = boundary;
        }
    }
    (!best.is_empty()).then_some(best)
}

/// Count of set pixels in every (2r+1)² box, through an integral image.
fn box_counts(m: &[bool], w: usize, h: usize, r: usize) -> Vec<u32> {
    let mut ii = vec![0u32; (w + 1) * (h + 1)];
    for y in 0..h {
        let mut row = 0u32;
        for x in 0..w {
            row += u32::from(m[y * w + x]);
            ii[(y + 1) * (w + 1) + x + 1] = ii[y * (w + 1) + x + 1] + row;
        }
    }
    let mut out = vec![0u32; w * h];
    for y in 0..h {
        let (y0, y1) = (y.saturating_sub(r), (y + r + 1).min(h));
        for x in 0..w {
            let (x0, x1) = (x.saturating_sub(r), (x + r + 1).min(w));
            out[y * w + x] = ii[y1 * (w + 1) + x1] + ii[y0 * (w + 1) + x0]
                - ii[y0 * (w + 1) + x1]
                - ii[y1 * (w + 1) + x0];
        }
    }
    out
}

/// Erosion by a square (outside the frame counts as set, so regions at the border survive).
fn erode(m: &[bool], w: usize, h: usize, r: usize) -> Vec<bool> {
    let counts = box_counts(m, w, h, r);
    (0..w * h)
        .map(|i| {
            let (x, y) = (i % w, i / w);
            let area = ((x + r + 1).min(w) - x.saturating_sub(r))
                * ((y + r + 1).min(h) - y.saturating_sub(r));
            counts[i] as usize == area
        })
        .collect()
}

fn dilate(m: &[bool], w: usize, h: usize, r: usize) -> Vec<bool> {
    box_counts(m, w, h, r).into_iter().map(|c| c > 0).collect()
}

/// Convex hull (Andrew's monotone chain) of the points' pixel centres, clockwise in image
/// coordinates.
fn hull(points: &[(i32, i32)]) -> Vec<Pt> {
    // Only the leftmost and rightmost point of each row can be on the hull.
    let mut rows: std::collections::BTreeMap<i32, (i32, i32)> = Default::default();
    for &(x, y) in points {
        let e = rows.entry(y).or_insert((x, x));
        e.0 = e.0.min(x);
        e.1 = e.1.max(x);
    }
    let mut p: Vec<(i64, i64)> = rows
        .iter()
        .flat_map(|(&y, &(a, b))| [(i64::from(a), i64::from(y)), (i64::from(b), i64::from(y))])
        .collect();
    p.sort_unstable();
    p.dedup();
    if p.len() < 3 {
        return Vec::new();
    }
    let cross = |o: (i64, i64), a: (i64, i64), b: (i64, i64)| {
        (a.0 - o.0) * (b.1 - o.1) - (a.1 - o.1) * (b.0 - o.0)
    };
    let mut lower: Vec<(i64, i64)> = Vec::new();
    for &q in &p {
        while lower.len() >= 2 && cross(lower[lower.len() - 2], lower[lower.len() - 1], q) <= 0 {
            lower.pop();
        }
        lower.push(q);
    }
    let mut upper: Vec<(i64, i64)> = Vec::new();
    for &q in p.iter().rev() {
        while upper.len() >= 2 && cross(upper[upper.len() - 2], upper[upper.len() - 1], q) <= 0 {
            upper.pop();
        }
        upper.push(q);
    }
    lower.pop();
    upper.pop();
    lower.extend(upper);
    lower
        .into_iter()
        .map(|(x, y)| (x as f64 + 0.5, y as f64 + 0.5))
        .collect()
}

/// Quadrilaterals from the hull of `points`: the largest inscribed one, and the one whose sides
/// extend the hull's four longest edges (which survives clutter touching a corner of the page).
fn hull_quads(points: &[(i32, i32)], min_extent: f64) -> Vec<[Pt; 4]> {
    let hv = hull(points);
    let mut out = Vec::new();
    if let Some(q) = largest_quad(hv.clone(), min_extent) {
        out.push(q);
    }
    if let Some(q) = longest_sides_quad(&hv) {
        out.push(q);
    }
    out
}

fn longest_sides_quad(hv: &[Pt]) -> Option<[Pt; 4]> {
    if hv.len() < 4 {
        return None;
    }
    let perimeter: f64 = (0..hv.len())
        .map(|i| dist(hv[i], hv[(i + 1) % hv.len()]))
        .sum();
    let poly = simplify_closed(hv, 0.01 * perimeter);
    let n = poly.len();
    if n < 4 {
        return None;
    }
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_by(|&a, &b| {
        dist(poly[b], poly[(b + 1) % n]).total_cmp(&dist(poly[a], poly[(a + 1) % n]))
    });
    let mut four = idx[..4].to_vec();
    four.sort_unstable();
    let lines: Vec<Line> = four
        .iter()
        .map(|&i| Line::through(poly[i], poly[(i + 1) % n]))
        .collect();
    let mut q = [(0.0, 0.0); 4];
    for i in 0..4 {
        q[i] = lines[(i + 3) % 4].intersect(&lines[i])?;
    }
    Some(q)
}

/// The largest-area quadrilateral with its corners on the hull vertices `hv`.
fn largest_quad(mut hv: Vec<Pt>, min_extent: f64) -> Option<[Pt; 4]> {
    if hv.len() < 4 {
        return None;
    }
    let (minx, maxx) = hv
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (miny, maxy) = hv
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    if maxx - minx < min_extent || maxy - miny < min_extent {
        return None;
    }
    // Drop nearly collinear hull vertices until few enough remain for the cubic search.
    let mut eps = 0.5;
    while hv.len() > 48 {
        hv = simplify_closed(&hv, eps);
        eps *= 1.5;
    }
    let n = hv.len();
    if n < 4 {
        return None;
    }
    let tri = |a: Pt, b: Pt, c: Pt| ((b.0 - a.0) * (c.1 - a.1) - (b.1 - a.1) * (c.0 - a.0)).abs();
    let mut best = (0.0, [0usize; 4]);
    for i in 0..n {
        for k in i + 2..n {
            let (a, c) = (hv[i], hv[k]);
            let (mut bj, mut bja) = (i + 1, 0.0);
            for (j, &p) in hv.iter().enumerate().take(k).skip(i + 1) {
                let t = tri(a, p, c);
                if t > bja {
                    (bj, bja) = (j, t);
                }
            }
            let (mut bl, mut bla) = (None, 0.0);
            for l in (k + 1..n).chain(0..i) {
                let t = tri(a, c, hv[l]);
                if t > bla {
                    (bl, bla) = (Some(l), t);
                }
            }
            if let Some(bl) = bl.filter(|_| bja + bla > best.0) {
                best = (bja + bla, [i, bj, k, bl]);
            }
        }
    }
    (best.0 > 0.0).then(|| best.1.map(|i| hv[i]))
}

/// Douglas–Peucker on a closed polygon (split at vertex 0 and the vertex farthest from it).
fn simplify_closed(poly: &[Pt], eps: f64) -> Vec<Pt> {
    let far = (1..poly.len())
        .max_by(|&a, &b| dist(poly[0], poly[a]).total_cmp(&dist(poly[0], poly[b])))
        .unwrap_or(0);
    let mut out = dp(&poly[..=far], eps);
    out.pop();
    let mut second: Vec<Pt> = poly[far..].to_vec();
    second.push(poly[0]);
    let mut s = dp(&second, eps);
    s.pop();
    out.extend(s);
    out
}

fn dp(pts: &[Pt], eps: f64) -> Vec<Pt> {
    if pts.len() < 3 {
        return pts.to_vec();
    }
    let (a, b) = (pts[0], pts[pts.len() - 1]);
    let len = dist(a, b).max(1e-9);
    let (mut idx, mut dmax) = (0, 0.0);
    for (i, p) in pts.iter().enumerate().take(pts.len() - 1).skip(1) {
        let d = ((b.0 - a.0) * (a.1 - p.1) - (a.0 - p.0) * (b.1 - a.1)).abs() / len;
        if d > dmax {
            (idx, dmax) = (i, d);
        }
    }
    if dmax <= eps {
        return vec![a, b];
    }
    let mut left = dp(&pts[..=idx], eps);
    left.pop();
    left.extend(dp(&pts[idx..], eps));
    left
}

/// A line `n · p = c` with unit normal `n`.
#[derive(Clone, Copy)]
struct Line {
    n: Pt,
    c: f64,
}

impl Line {
    fn through(a: Pt, b: Pt) -> Line {
        let (dx, dy) = (b.0 - a.0, b.1 - a.1);
        let l = dx.hypot(dy).max(1e-12);
        let n = (-dy / l, dx / l);
        Line {
            n,
            c: n.0 * a.0 + n.1 * a.1,
        }
    }
    fn dist(&self, p: Pt) -> f64 {
        self.n.0 * p.0 + self.n.1 * p.1 - self.c
    }
    fn intersect(&self, o: &Line) -> Option<Pt> {
        let det = self.n.0 * o.n.1 - self.n.1 * o.n.0;
        (det.abs() > 1e-9).then(|| {
            (
                (self.c * o.n.1 - self.n.1 * o.c) / det,
                (self.n.0 * o.c - self.c * o.n.0) / det,
            )
        })
    }
    /// Total least squares fit.
    fn fit(pts: &[Pt]) -> Option<Line> {
        if pts.len() < 2 {
            return None;
        }
        let n = pts.len() as f64;
        let (mx, my) = pts.iter().fold((0.0, 0.0), |(a, b), p| (a + p.0, b + p.1));
        let (mx, my) = (mx / n, my / n);
        let (mut sxx, mut syy, mut sxy) = (0.0, 0.0, 0.0);
        for p in pts {
            let (dx, dy) = (p.0 - mx, p.1 - my);
            sxx += dx * dx;
            syy += dy * dy;
            sxy += dx * dy;
        }
        // Direction of largest spread; the normal is perpendicular to it.
        let theta = 0.5 * (2.0 * sxy).atan2(sxx - syy);
        let n = (-theta.sin(), theta.cos());
        Some(Line {
            n,
            c: n.0 * mx + n.1 * my,
        })
    }
}

/// Edge points (sub-pixel) within `band` of the side `a → b`, away from the corners.
fn side_points(e: &Edges, a: Pt, b: Pt, line: &Line, band: f64) -> Vec<Pt> {
    // Walk along the line itself, between the projections of the side's ends.
    let proj = |p: Pt| {
        let d = line.dist(p);
        (p.0 - d * line.n.0, p.1 - d * line.n.1)
    };
    let (a, b) = (proj(a), proj(b));
    let len = dist(a, b);
    let mut pts = Vec::new();
    if len < 4.0 {
        return pts;
    }
    let (ux, uy) = ((b.0 - a.0) / len, (b.1 - a.1) / len);
    let r = band.ceil() as isize;
    let mut seen = std::collections::HashSet::new();
    let mut t = 0.08 * len;
    while t < 0.92 * len {
        let (px, py) = (a.0 + ux * t, a.1 + uy * t);
        for o in -r..=r {
            let (qx, qy) = (px + line.n.0 * o as f64, py + line.n.1 * o as f64);
            let (ix, iy) = (qx.floor() as isize, qy.floor() as isize);
            if e.is_edge(ix, iy) && seen.insert((ix, iy)) {
                let p = e.subpixel(ix as usize, iy as usize);
                if line.dist(p).abs() <= band {
                    pts.push(p);
                }
            }
        }
        t += 1.0;
    }
    pts
}

/// The line through most of `pts` (within 1.5 px), by a deterministic RANSAC, refitted by least
/// squares to its inliers: clutter touching the page must not pull the side.
fn robust_line(pts: &[Pt]) -> Option<Line> {
    if pts.len() < 8 {
        return Line::fit(pts);
    }
    let mut state = 0x2545_F491_4F6C_DD1Du64 ^ pts.len() as u64;
    let mut next = |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    // Score on at most ~2000 points (textured grounds put many edge pixels in the band).
    let step = (pts.len() / 2000).max(1);
    let sample: Vec<Pt> = pts.iter().copied().step_by(step).collect();
    let mut best: Option<(usize, Line)> = None;
    for _ in 0..150 {
        let (a, b) = (pts[next(pts.len())], pts[next(pts.len())]);
        if dist(a, b) < 10.0 {
            continue;
        }
        let l = Line::through(a, b);
        let inliers = sample.iter().filter(|p| l.dist(**p).abs() <= 1.5).count();
        if best.as_ref().is_none_or(|(n, _)| inliers > *n) {
            best = Some((inliers, l));
        }
    }
    let (_, l) = best?;
    let inliers: Vec<Pt> = pts
        .iter()
        .copied()
        .filter(|p| l.dist(*p).abs() <= 1.5)
        .collect();
    Line::fit(&inliers)
}

/// Refits each side to the edge pixels along it and intersects the new lines.
fn refine(e: &Edges, q: [Pt; 4]) -> [Pt; 4] {
    let diag = dist(q[0], q[2]).max(dist(q[1], q[3]));
    let mut lines = [Line::through(q[0], q[1]); 4];
    for (i, line) in lines.iter_mut().enumerate() {
        let (a, b) = (q[i], q[(i + 1) % 4]);
        let mut l = Line::through(a, b);
        let wide = side_points(e, a, b, &l, (0.05 * diag).max(3.0));
        let robust = ((wide.len() as f64) >= 0.25 * dist(a, b))
            .then(|| robust_line(&wide))
            .flatten();
        if let Some(f) = robust {
            l = f;
            let narrow = side_points(e, a, b, &l, 1.5);
            if (narrow.len() as f64) >= 0.25 * dist(a, b) {
                l = Line::fit(&narrow).unwrap_or(l);
            }
        }
        *line = l;
    }
    let mut out = q;
    for i in 0..4 {
        match lines[(i + 3) % 4].intersect(&lines[i]) {
            Some(p) if dist(p, q[i]) < 0.2 * diag => out[i] = p,
            _ => return q,
        }
    }
    out
}

/// `Some(sides seen)` when `q` is a plausible document outline: sides not on the frame's edge.
fn validate(s: &Plane, e: &Edges, q: &[Pt; 4]) -> Option<usize> {
    let (w, h) = (s.w as f64, s.h as f64);
    if !is_convex(q) || signed_area(q).abs() < MIN_AREA * w * h {
        return None;
    }
    if corner_angles(q).iter().any(|a| !(50.0..=130.0).contains(a)) {
        return None;
    }
    let near_border = |p: Pt| p.0 < 3.0 || p.1 < 3.0 || p.0 > w - 3.0 || p.1 > h - 3.0;
    let mut supports = Vec::new();
    let mut real_sides = 0;
    for i in 0..4 {
        let (a, b) = (q[i], q[(i + 1) % 4]);
        let len = dist(a, b);
        let line = Line::through(a, b);
        let (ux, uy) = ((b.0 - a.0) / len, (b.1 - a.1) / len);
        let (mut hit, mut border, mut total) = (0usize, 0usize, 0usize);
        let (mut contrast, mut contrast_n) = (0.0f64, 0usize);
        let mut t = 0.05 * len;
        while t < 0.95 * len {
            let p = (a.0 + ux * t, a.1 + uy * t);
            total += 1;
            if near_border(p) {
                border += 1;
            } else {
                let found = (-2..=2).any(|o: i32| {
                    let qx = p.0 + line.n.0 * f64::from(o);
                    let qy = p.1 + line.n.1 * f64::from(o);
                    e.is_edge(qx.floor() as isize, qy.floor() as isize)
                });
                if found {
                    hit += 1;
                }
                let sample = |o: f64| {
                    let (x, y) = (p.0 + line.n.0 * o, p.1 + line.n.1 * o);
                    (x >= 0.0 && y >= 0.0 && x < w && y < h)
                        .then(|| f64::from(s.at(x as usize, y as usize)))
                };
                if let (Some(i1), Some(o1)) = (sample(4.0), sample(-4.0)) {
                    contrast += (i1 - o1).abs();
                    contrast_n += 1;
                }
            }
            t += 2.0;
        }
        if total == 0 {
            return None;
        }
        if border * 2 > total {
            supports.push(1.0);
            continue;
        }
        real_sides += 1;
        let support = (hit + border) as f64 / total as f64;
        let contrast = contrast / contrast_n.max(1) as f64;
        if support < 0.5 || contrast < 10.0 {
            return None;
        }
        supports.push(support);
    }
    if real_sides < 2 {
        return None;
    }
    let mean = supports.iter().sum::<f64>() / 4.0;
    (mean >= 0.65).then_some(real_sides)
}

#[cfg(test)]
mod tests {
    use super::super::edges::smooth;
    use super::*;

    fn scene(quad: Option<[Pt; 4]>) -> Plane {
        let (w, h) = (400, 300);
        let mut p = Plane::filled(w, h, 60);
        if let Some(q) = quad {
            for y in 0..h {
                for x in 0..w {
                    let c = (x as f64 + 0.5, y as f64 + 0.5);
                    let inside = (0..4).all(|i| {
                        let (a, b) = (q[i], q[(i + 1) % 4]);
                        (b.0 - a.0) * (c.1 - a.1) - (b.1 - a.1) * (c.0 - a.0) >= 0.0
                    });
                    if inside {
                        p.data[y * w + x] = 220;
                    }
                }
            }
        }
        p
    }

    #[test]
    fn finds_a_bright_quad_and_nothing_on_an_empty_scene() {
        let q = [(80.0, 40.0), (300.0, 55.0), (290.0, 270.0), (70.0, 250.0)];
        let found = detect(&smooth(&scene(Some(q)), 1)).expect("document");
        let iou = super::super::geom::iou(&found.quad, &q);
        assert!(iou > 0.98, "iou {iou}: {:?}", found.quad);
        assert!(detect(&smooth(&scene(None), 1)).is_none());
    }
}
