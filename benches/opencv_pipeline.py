#!/usr/bin/env python3
"""The OpenCV peer of countersign's document pipeline (cargo bench --bench imaging).

The textbook pipeline, the same steps as countersign's: decode (imdecode, libjpeg-turbo),
resize to ~1 MP, grey, blur, Canny, findContours, approxPolyDP at 2 % of the perimeter (the
largest 4-point contour), getPerspectiveTransform, warpPerspective to A4 at 300 dpi (bilinear),
imencode at JPEG quality 85. Bytes are read before timing, like countersign's side.

Usage: opencv_pipeline.py [--reps N] [--out DIR] FRAME.jpg...
Prints one JSON object per frame: {"file", "found", "corners", "ms": [per repetition],
"stages": {stage: ms of the last repetition}, "threads", "opencv"}.
"""

import argparse
import json
import os
import time

import cv2
import numpy as np

A4 = (2480, 3508)  # 210 x 297 mm at 300 dpi


def order(pts):
    """Clockwise from the top-left (smallest x+y)."""
    pts = pts.reshape(4, 2).astype(np.float32)
    c = pts.mean(axis=0)
    ang = np.arctan2(pts[:, 1] - c[1], pts[:, 0] - c[0])
    pts = pts[np.argsort(ang)]
    start = int(np.argmin(pts[:, 0] + pts[:, 1]))
    return np.roll(pts, -start, axis=0)


def pipeline(data, stages):
    t = time.perf_counter()
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    stages["decode"] = (time.perf_counter() - t) * 1000
    t = time.perf_counter()
    h, w = img.shape[:2]
    k = max(1, int(np.ceil(max(w, h) / 1280)))
    small = cv2.resize(img, (w // k, h // k), interpolation=cv2.INTER_AREA)
    grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    grey = cv2.GaussianBlur(grey, (5, 5), 0)
    edges = cv2.Canny(grey, 50, 150)
    edges = cv2.dilate(edges, np.ones((3, 3), np.uint8))
    contours, _ = cv2.findContours(edges, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    quad = None
    for c in sorted(contours, key=cv2.contourArea, reverse=True)[:10]:
        approx = cv2.approxPolyDP(c, 0.02 * cv2.arcLength(c, True), True)
        if len(approx) == 4 and cv2.isContourConvex(approx):
            quad = order(approx) * k
            break
    stages["detect"] = (time.perf_counter() - t) * 1000
    t = time.perf_counter()
    if quad is None:
        quad = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    top = np.linalg.norm(quad[1] - quad[0])
    side = np.linalg.norm(quad[3] - quad[0])
    size = (A4[1], A4[0]) if top > side else A4
    dst = np.float32([[0, 0], [size[0], 0], [size[0], size[1]], [0, size[1]]])
    m = cv2.getPerspectiveTransform(quad.astype(np.float32), dst)
    page = cv2.warpPerspective(img, m, size, flags=cv2.INTER_LINEAR, borderValue=(255, 255, 255))
    stages["warp"] = (time.perf_counter() - t) * 1000
    t = time.perf_counter()
    ok, jpeg = cv2.imencode(".jpg", page, [cv2.IMWRITE_JPEG_QUALITY, 85])
    stages["encode"] = (time.perf_counter() - t) * 1000
    return quad, jpeg.tobytes()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--out")
    ap.add_argument("frames", nargs="+")
    a = ap.parse_args()
    for path in a.frames:
        with open(path, "rb") as f:
            data = f.read()
        pipeline(data, {})  # warm-up
        times, stages = [], {}
        for _ in range(a.reps):
            t = time.perf_counter()
            quad, jpeg = pipeline(data, stages)
            times.append((time.perf_counter() - t) * 1000)
        if a.out:
            with open(os.path.join(a.out, os.path.basename(path) + ".opencv.jpg"), "wb") as f:
                f.write(jpeg)
        print(json.dumps({
            "file": path,
            "corners": quad.tolist(),
            "ms": times,
            "stages": stages,
            "threads": cv2.getNumThreads(),
            "opencv": cv2.__version__,
        }), flush=True)


if __name__ == "__main__":
    main()
