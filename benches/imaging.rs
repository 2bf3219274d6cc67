//! Document imaging, side by side in one run (docs/performance.md, "Document imaging"):
//!
//! 1. The full pipeline (decode, detect, warp to A4 at 300 dpi, encode q85) on generated 13 MP
//!    camera frames: `countersign::imaging::process` against the same pipeline in OpenCV
//!    (`benches/opencv_pipeline.py`, opencv-python-headless in `.venv`, installed from
//!    `benches/requirements.txt` when missing). Median wall time per page, and the ratio.
//! 2. JPEG decode and encode against libjpeg-turbo's `djpeg`/`cjpeg` (Debian libjpeg-turbo-progs)
//!    at quality 85 on the same frames and on a 300 dpi A4 page.
//! 3. Peak memory (VmHWM) of a child process running the pipeline on one 16 MP frame.
//!
//! `cargo bench --bench imaging [-- --frames N --reps N]`. Frames are generated once into
//! `target/imaging-bench/` (deterministic seeds).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use countersign::imaging::testgen::{SceneOptions, scene};
use countersign::imaging::{self, ProcessOptions, bench};

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

fn time_ms(reps: usize, mut f: impl FnMut()) -> f64 {
    f(); // warm-up
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    median(&mut t)
}

fn frame(dir: &Path, name: &str, seed: u64, width: usize, height: usize) -> PathBuf {
    let path = dir.join(name);
    if !path.exists() {
        // A document camera's frame: sharp, well lit, JPEG quality 92.
        let s = scene(
            seed,
            &SceneOptions {
                width,
                height,
                blur: Some(0.7),
                light: Some(0.95),
                jpeg_quality: Some(92),
                ..Default::default()
            },
        );
        std::fs::write(&path, &s.jpeg).expect("write frame");
    }
    path
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    format!(
        "{cpu}, {cores} cores, load {}, codec {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        imaging::CODEC
    )
}

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// The child of the memory measurement: one frame through the pipeline, then the peak RSS.
fn rss_child(path: &str) {
    let bytes = std::fs::read(path).expect("frame");
    let t = Instant::now();
    let p = imaging::process(&bytes, &ProcessOptions::default()).expect("processed");
    println!(
        "{} {:.1} {} {}x{}",
        vm_hwm_kib(),
        t.elapsed().as_secs_f64() * 1000.0,
        p.found,
        p.width,
        p.height
    );
}

fn python() -> Option<PathBuf> {
    let venv = PathBuf::from(".venv/bin/python");
    let ok = |p: &Path| {
        Command::new(p)
            .args(["-c", "import cv2"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if !ok(&venv) {
        if !venv.exists() {
            let _ = Command::new("python3")
                .args(["-m", "venv", ".venv"])
                .status();
        }
        eprintln!("installing the OpenCV peer (benches/requirements.txt) into .venv");
        let _ = Command::new(".venv/bin/pip")
            .args(["install", "-q", "-r", "benches/requirements.txt"])
            .status();
    }
    ok(&venv).then_some(venv)
}

fn subprocess_ms(reps: usize, cmd: &[&str]) -> Option<f64> {
    which(cmd[0])?;
    Some(time_ms(reps, || {
        let status = Command::new(cmd[0]).args(&cmd[1..]).status();
        assert!(status.is_ok_and(|s| s.success()), "{cmd:?} failed");
    }))
}

fn which(tool: &str) -> Option<()> {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|_| ())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--rss-child") {
        rss_child(&args[i + 1]);
        return;
    }
    let opt = |name: &str, default: usize| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1)?.parse().ok())
            .unwrap_or(default)
    };
    let (frames, reps) = (opt("--frames", 5), opt("--reps", 5));
    // cargo runs benches from the package root.
    let dir = PathBuf::from("target/imaging-bench");
    std::fs::create_dir_all(&dir).expect("bench directory");
    println!("machine: {}", machine());

    let paths: Vec<PathBuf> = (0..frames)
        .map(|i| {
            frame(
                &dir,
                &format!("frame13mp-{i}.jpg"),
                500 + i as u64,
                4160,
                3120,
            )
        })
        .collect();

    // 1. Full pipeline: countersign, then OpenCV on the same files.
    println!("\n## Full pipeline, 13 MP (4160x3120) frame -> A4 300 dpi (2480x3508) JPEG q85");
    // Each frame: countersign, then OpenCV right after it, so both see the same machine load.
    let opts = ProcessOptions::default();
    let py = python();
    if py.is_none() {
        println!("OpenCV peer unavailable (no .venv with opencv-python-headless)");
    }
    let (mut ours, mut cv, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for p in &paths {
        let bytes = std::fs::read(p).expect("frame");
        let mut last = None;
        let ms = time_ms(reps, || {
            last = Some(imaging::process(&bytes, &opts).expect("processed"))
        });
        let last = last.expect("ran");
        let stages: Vec<String> = last
            .timings
            .iter()
            .map(|(n, v)| format!("{n} {v:.1}"))
            .collect();
        println!(
            "countersign {}: {ms:.1} ms (found {}, {} KiB) [last run: {}]",
            p.display(),
            last.found,
            last.jpeg.len() / 1024,
            stages.join(", ")
        );
        std::fs::write(p.with_extension("countersign.jpg"), &last.jpeg).expect("write page");
        ours.push(ms);
        let Some(py) = &py else { continue };
        let out = Command::new(py)
            .arg("benches/opencv_pipeline.py")
            .args([
                "--reps",
                &reps.to_string(),
                "--out",
                &dir.display().to_string(),
            ])
            .arg(p)
            .output()
            .expect("run the OpenCV peer");
        let text = String::from_utf8_lossy(&out.stdout);
        let Some(v) = text
            .lines()
            .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        else {
            println!(
                "OpenCV peer failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            continue;
        };
        let mut peer: Vec<f64> = v["ms"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x.as_f64()).collect())
            .unwrap_or_default();
        let m = median(&mut peer);
        let st = v["stages"]
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, x)| format!("{k} {:.1}", x.as_f64().unwrap_or(0.0)))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        println!(
            "opencv {} ({} threads) {}: {m:.1} ms [last run: {st}]; ratio {:.2}",
            v["opencv"],
            v["threads"],
            p.display(),
            ms / m
        );
        cv.push(m);
        ratios.push(ms / m);
    }
    println!(
        "pipeline per page (median over frames): countersign {:.1} ms, OpenCV {:.1} ms; \
         ratio per frame {:.2}..{:.2}, median {:.2}",
        median(&mut ours.clone()),
        median(&mut cv.clone()),
        ratios.iter().copied().fold(f64::NAN, f64::min),
        ratios.iter().copied().fold(f64::NAN, f64::max),
        median(&mut ratios.clone())
    );

    // 2. Codecs against djpeg / cjpeg on the same data.
    println!("\n## JPEG codec, median ms (ratio to libjpeg-turbo's djpeg/cjpeg)");
    let frame0 = std::fs::read(&paths[0]).expect("frame");
    let f0 = paths[0].display().to_string();
    let djpeg = subprocess_ms(reps, &["djpeg", "-rgb", "-outfile", "/dev/null", &f0]);
    let row = |what: &str, ms: f64, peer: Option<f64>| {
        let ratio = peer.map_or(String::from("n/a"), |p| format!("{:.2}", ms / p));
        println!("{what}: {ms:.1} ms ({ratio})");
    };
    if let Some(d) = djpeg {
        println!("djpeg -rgb 13 MP (process, includes exec): {d:.1} ms");
    }
    #[cfg(feature = "turbojpeg")]
    row(
        "decode 13 MP to RGB, libjpeg-turbo 3.1 (turbojpeg crate)",
        time_ms(reps, || {
            bench::decode_rgb_turbo(&frame0).expect("decoded");
        }),
        djpeg,
    );
    let mut buf = Vec::new();
    #[cfg(feature = "turbojpeg")]
    row(
        "  the same into a reused buffer",
        time_ms(reps, || {
            bench::decode_rgb_turbo_into(&frame0, &mut buf).expect("decoded");
        }),
        djpeg,
    );
    row(
        "decode 13 MP to RGB, zune-jpeg (pure Rust)",
        time_ms(reps, || {
            bench::decode_rgb_zune(&frame0).expect("decoded");
        }),
        djpeg,
    );
    row(
        "  the same into a reused buffer",
        time_ms(reps, || {
            bench::decode_rgb_zune_into(&frame0, &mut buf).expect("decoded");
        }),
        djpeg,
    );
    row(
        "decode 13 MP as the pipeline does (YCbCr planes + 1/4-scale grey on the other core)",
        time_ms(reps, || {
            bench::decode_pipeline(&frame0).expect("decoded");
        }),
        djpeg,
    );
    // Encode: the A4 page countersign produced, as RGB.
    let page = std::fs::read(paths[0].with_extension("countersign.jpg")).expect("page");
    let (w, h, rgb) = bench::decode_rgb_zune(&page).expect("page decodes");
    let ppm = dir.join("page.ppm");
    let mut bytes = format!("P6\n{w} {h}\n255\n").into_bytes();
    bytes.extend_from_slice(&rgb);
    std::fs::write(&ppm, bytes).expect("write ppm");
    let ppm_s = ppm.display().to_string();
    let cjpeg = subprocess_ms(
        reps,
        &["cjpeg", "-quality", "85", "-outfile", "/dev/null", &ppm_s],
    );
    if let Some(c) = cjpeg {
        println!(
            "cjpeg -quality 85 A4 300 dpi {w}x{h} (process, includes exec and PPM read): {c:.1} ms"
        );
    }
    #[cfg(feature = "turbojpeg")]
    row(
        "encode A4 q85 4:2:0 from RGB, libjpeg-turbo 3.1 (turbojpeg crate)",
        time_ms(reps, || {
            bench::encode_rgb_turbo(&rgb, w, h, 85).expect("encoded");
        }),
        cjpeg,
    );
    row(
        "encode A4 q85 4:2:0 from RGB, jpeg-encoder (pure Rust)",
        time_ms(reps, || {
            bench::encode_rgb_jpeg_encoder(&rgb, w, h, 85).expect("encoded");
        }),
        cjpeg,
    );

    // 3. Peak memory of the pipeline on a 16 MP frame, in a fresh process.
    println!("\n## Peak memory, 16 MP (4608x3456) frame -> A4 300 dpi");
    let p16 = frame(&dir, "frame16mp.jpg", 900, 4608, 3456);
    let exe = std::env::current_exe().expect("own path");
    let out = Command::new(exe)
        .arg("--rss-child")
        .arg(&p16)
        .output()
        .expect("child");
    let text = String::from_utf8_lossy(&out.stdout);
    let f: Vec<&str> = text.split_whitespace().collect();
    if f.len() >= 4 {
        let kib: f64 = f[0].parse().unwrap_or(0.0);
        println!(
            "peak RSS (VmHWM) {:.1} MB, pipeline {} ms, found {}, page {}",
            kib * 1024.0 / 1e6,
            f[1],
            f[2],
            f[3]
        );
    } else {
        println!(
            "memory child failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
