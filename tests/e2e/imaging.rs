//! `countersign process` on generated captures: the JSON line per input, the written pages (JFIF
//! density, A4 at the dpi), the session PDF, a frame without a document, and a bad input.

use std::process::Command;

use countersign::imaging::testgen::{SceneOptions, scene};

use crate::harness::bin;

#[test]
fn process_cli_writes_pages_and_reports_each_input() {
    let dir = tempfile::tempdir().unwrap();
    let page = scene(
        4,
        &SceneOptions {
            width: 800,
            height: 600,
            ..Default::default()
        },
    );
    let empty = scene(
        4,
        &SceneOptions {
            width: 640,
            height: 480,
            empty: true,
            ..Default::default()
        },
    );
    let (a, b, bad) = (
        dir.path().join("a.jpg"),
        dir.path().join("b.jpg"),
        dir.path().join("c.jpg"),
    );
    std::fs::write(&a, &page.jpeg).unwrap();
    std::fs::write(&b, &empty.jpeg).unwrap();
    std::fs::write(&bad, b"not an image").unwrap();
    let out = dir.path().join("out");
    let run = Command::new(bin())
        .args(["process", "--out"])
        .arg(&out)
        .args(["--mode", "grey", "--dpi", "100", "--pdf"])
        .args([&a, &b, &bad])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1), "one input is not an image");
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&run.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 3);

    let l = &lines[0];
    assert_eq!(l["found"], true, "{l}");
    let corners = l["corners"].as_array().unwrap();
    assert_eq!(corners.len(), 4);
    let truth = page.corners.unwrap();
    let got: [(f64, f64); 4] = std::array::from_fn(|i| {
        (
            corners[i][0].as_f64().unwrap(),
            corners[i][1].as_f64().unwrap(),
        )
    });
    assert!(countersign::imaging::iou(&got, &truth) > 0.95);
    assert_eq!(
        (l["width"].as_u64(), l["height"].as_u64()),
        (Some(827), Some(1169))
    );
    for key in ["decode", "detect", "warp_encode", "total"] {
        assert!(l["timings_ms"][key].as_f64().is_some(), "{key}: {l}");
    }
    assert!(l["quality"]["sharpness"].as_f64().is_some());
    assert!(l["skew_degrees"].as_f64().is_some());
    let written = std::fs::read(l["outputs"][0].as_str().unwrap()).unwrap();
    assert_eq!(countersign::imaging::density(&written), Some((1, 100, 100)));

    let e = &lines[1];
    assert_eq!(e["found"], false);
    assert_eq!(e["corners"], serde_json::Value::Null);
    assert_eq!(e["warnings"][0]["kind"], "no_document");
    assert!(
        e["warnings"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("no document")
    );
    assert_eq!(e["width"].as_u64(), Some(640), "the whole frame is kept");

    assert!(
        lines[2]["error"]
            .as_str()
            .unwrap()
            .contains("not a JPEG, PNG or TIFF")
    );
    let pdf = std::fs::read(out.join("pages.pdf")).unwrap();
    assert!(pdf.windows(written.len()).any(|w| w == written.as_slice()));
}
