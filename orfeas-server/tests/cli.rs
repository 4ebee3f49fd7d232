//! The `orfeas` binary as a user runs it: exit codes, JSON summary, files on disk.

use std::io::Cursor;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// The binary with an empty Hugging Face cache, so `auto` never finds weights a developer
/// happens to have downloaded.
fn orfeas() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_orfeas"));
    cmd.env(
        "HF_HUB_CACHE",
        std::env::temp_dir().join("orfeas-tests-no-hf-cache"),
    );
    cmd
}

fn write_png(path: &Path, size: u32) {
    let img = image::RgbaImage::from_fn(size, size, |x, y| {
        let (dx, dy) = (x as f32 - size as f32 / 2.0, y as f32 - size as f32 / 2.0);
        let inside = dx * dx + dy * dy < (size as f32 * 0.4).powi(2);
        image::Rgba([
            200,
            (x * 3) as u8,
            (y * 3) as u8,
            if inside { 255 } else { 0 },
        ])
    });
    let mut bytes = Vec::new();
    img.write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png)
        .expect("encode");
    std::fs::write(path, bytes).expect("write");
}

fn json_of(out: &std::process::Output) -> Value {
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("stdout is one JSON document ({e}): {text}"))
}

#[test]
fn generate_writes_every_format_and_reports_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let images = dir.path().join("in");
    std::fs::create_dir_all(images.join("nested")).expect("mkdir");
    write_png(&images.join("logo.png"), 64);
    write_png(&images.join("nested/deep.png"), 48);
    let out_dir = dir.path().join("out");
    let out = orfeas()
        .args([
            "generate",
            images.to_str().expect("utf8"),
            "-o",
            out_dir.to_str().expect("utf8"),
        ])
        .args([
            "--format",
            "stl,obj,glb,ply,3mf,depth16,depth.npy",
            "--quality",
            "low",
            "--json",
        ])
        .output()
        .expect("run orfeas");
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = json_of(&out);
    assert_eq!(doc["total"], 1, "non-recursive by default");
    assert_eq!(doc["complete"], 1);
    assert_eq!(doc["failed"], 0);
    let job = &doc["jobs"][0];
    assert_eq!(job["status"], "complete");
    assert_eq!(
        job["depth"], "inflate",
        "a transparent background means a real mask"
    );
    assert_eq!(job["mask"], "alpha");
    assert_eq!(job["watertight"], true);
    assert!(job["triangles"].as_u64().unwrap_or(0) > 10);
    assert!(job["error"].is_null());
    let outputs: Vec<&str> = job["outputs"]
        .as_array()
        .expect("outputs")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for ext in [
        "stl",
        "obj",
        "mtl",
        "png",
        "glb",
        "ply",
        "3mf",
        "depth16.png",
        "depth.npy",
    ] {
        let f = out_dir.join(format!("logo.{ext}"));
        assert!(f.is_file(), "{ext} written");
        assert!(
            outputs.iter().any(|o| o.ends_with(&format!("logo.{ext}"))),
            "{ext} listed"
        );
    }

    // Same input again: new names, the first files untouched.
    let before = std::fs::read(out_dir.join("logo.stl")).expect("read");
    let again = orfeas()
        .args([
            "generate",
            images.to_str().expect("utf8"),
            "-r",
            "-o",
            out_dir.to_str().expect("utf8"),
            "--json",
            "-q",
            "low",
        ])
        .output()
        .expect("run orfeas");
    assert_eq!(again.status.code(), Some(0));
    let doc = json_of(&again);
    assert_eq!(doc["total"], 2, "--recursive finds the nested image");
    assert!(out_dir.join("logo_1.stl").is_file());
    assert!(out_dir.join("deep.stl").is_file());
    assert_eq!(
        std::fs::read(out_dir.join("logo.stl")).expect("read"),
        before
    );
}

#[test]
fn a_bad_file_fails_alone_with_exit_code_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_png(&dir.path().join("ok.png"), 40);
    std::fs::write(dir.path().join("bad.png"), b"not an image at all").expect("write");
    let out = orfeas()
        .current_dir(dir.path())
        .args([
            "generate",
            "ok.png",
            "bad.png",
            "-o",
            "out",
            "--json",
            "--depth",
            "relief",
            "--surface",
        ])
        .output()
        .expect("run orfeas");
    assert_eq!(out.status.code(), Some(1));
    let doc = json_of(&out);
    assert_eq!(
        (doc["complete"].as_u64(), doc["failed"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(doc["jobs"][0]["depth"], "relief");
    assert_eq!(doc["jobs"][0]["watertight"], false, "a surface is open");
    assert_eq!(doc["jobs"][1]["status"], "error");
    assert!(doc["jobs"][1]["error"]
        .as_str()
        .unwrap_or("")
        .contains("bad.png"));
    assert!(dir.path().join("out/ok.stl").is_file());
}

#[test]
fn usage_errors_exit_with_two() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("utf8");
    for args in [
        vec!["generate", d, "-o", d, "--format", "fbx"],
        vec!["generate", d, "-o", d, "--quality", "ultra"],
        vec!["generate", d, "-o", d, "--width-mm", "-5"],
        vec!["generate", d, "-o", d, "--device", "cuda"],
        vec!["generate", "-o", d],
        vec!["generate", d, "-o", d, "--method", "nerf"],
        vec![
            "generate", d, "-o", d, "--method", "triposr", "--depth", "relief",
        ],
        vec!["generate", d, "-o", d, "--format", "stl,field.npy"],
        vec!["generate", d, "-o", d, "--resolution", "4"],
    ] {
        write_png(&dir.path().join("x.png"), 16);
        let out = orfeas().args(&args).output().expect("run orfeas");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(!stderr.is_empty());
        assert!(
            !dir.path().join("x.stl").exists(),
            "{args:?} must not write anything"
        );
    }
    // An empty directory is a usage error too.
    let empty = tempfile::tempdir().expect("tempdir");
    let out = orfeas()
        .args(["generate", empty.path().to_str().expect("utf8"), "-o", d])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no images"));
}

#[test]
fn depth_anything_runs_from_a_weights_directory_and_says_how_to_get_weights() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_png(&dir.path().join("sprite.png"), 56);
    let weights = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../orfeas-core/tests/fixtures/depth_anything/tiny");
    let out = orfeas()
        .current_dir(dir.path())
        .args([
            "generate",
            "sprite.png",
            "-o",
            "out",
            "--json",
            "-q",
            "low",
            "--depth",
            "depth-anything",
        ])
        .args([
            "--format",
            "stl,depth.npy",
            "--weights",
            weights.to_str().expect("utf8"),
        ])
        .output()
        .expect("run orfeas");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = json_of(&out);
    assert_eq!(doc["jobs"][0]["depth"], "depth-anything");
    assert_eq!(doc["jobs"][0]["watertight"], true);
    let npy = std::fs::read(dir.path().join("out/sprite.depth.npy")).expect("npy written");
    assert!(npy.starts_with(b"\x93NUMPY"));

    let missing = orfeas()
        .current_dir(dir.path())
        .env("HF_HUB_CACHE", dir.path().join("no-cache"))
        .args([
            "generate",
            "sprite.png",
            "-o",
            "out2",
            "--depth",
            "depth-anything",
        ])
        .output()
        .expect("run orfeas");
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("fetch-model"));
}

#[test]
fn full_objects_from_a_weights_directory_with_the_json_summary() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_png(&dir.path().join("toy.png"), 48);
    let tiny = Path::new(env!("CARGO_MANIFEST_DIR")).join("../orfeas-core/tests/fixtures/triposr");
    std::fs::copy(tiny.join("input_border.png"), dir.path().join("cut.png")).expect("copy");
    let out = orfeas()
        .current_dir(dir.path())
        .args(["generate", "toy.png", "cut.png", "-o", "out", "--json"])
        .args([
            "--method",
            "triposr",
            "--resolution",
            "32",
            "--keep-largest",
        ])
        .args(["--format", "stl,glb,field.npy", "--width-mm", "60"])
        .args(["--weights", tiny.join("tiny").to_str().expect("utf8")])
        .output()
        .expect("run orfeas");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let doc = json_of(&out);
    assert_eq!(doc["complete"], 2, "{doc}");
    for job in doc["jobs"].as_array().expect("jobs") {
        assert_eq!(job["method"], "triposr", "{job}");
        assert_eq!(job["depth"], "triposr");
        assert_eq!(job["mask"], "alpha");
        assert_eq!(job["resolution"], 32);
        assert_eq!(job["watertight"], true);
        assert!(job["triangles"].as_u64().is_some_and(|t| t > 0));
    }
    assert_eq!(doc["jobs"][0]["warnings"], serde_json::json!([]));
    let warning = "foreground touches the image border: the object may be cut off";
    assert_eq!(doc["jobs"][1]["warnings"], serde_json::json!([warning]));
    assert!(
        stderr.contains(warning),
        "the terminal says it too: {stderr}"
    );
    let npy = std::fs::read(dir.path().join("out/toy.field.npy")).expect("field written");
    assert_eq!(npy.len(), 128 + 32 * 32 * 32 * 4);

    // Without weights: a usage error that says how to get them; nothing is written.
    let missing = orfeas()
        .current_dir(dir.path())
        .args(["generate", "toy.png", "-o", "out2", "--method", "triposr"])
        .output()
        .expect("run orfeas");
    assert_eq!(missing.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("fetch-model --model triposr"), "{stderr}");
    assert!(!dir.path().join("out2").join("toy.stl").exists());
    // An object has no depth map; a relief has no density field.
    for args in [
        ["--method", "triposr", "--format", "depth.npy"],
        ["--depth", "relief", "--format", "field.npy"],
    ] {
        let out = orfeas()
            .current_dir(dir.path())
            .args(["generate", "toy.png", "-o", "out3"])
            .args(args)
            .output()
            .expect("run orfeas");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn fetch_model_knows_triposr() {
    let out = orfeas()
        .args(["fetch-model", "--model", "no-such-model"])
        .output()
        .expect("run orfeas");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("triposr"), "{stderr}");
}

#[test]
fn gpu_reports_telemetry_or_why_there_is_none_and_exits_zero() {
    let json = orfeas()
        .args(["gpu", "--json"])
        .output()
        .expect("run orfeas gpu --json");
    assert_eq!(
        json.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&json.stderr)
    );
    let doc = json_of(&json);
    let available = doc["available"].as_bool().expect("available is a boolean");
    assert!(doc["gpus"].is_array());

    let plain = orfeas().arg("gpu").output().expect("run orfeas gpu");
    assert_eq!(
        plain.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&plain.stderr)
    );
    let text = String::from_utf8_lossy(&plain.stdout);
    if available {
        assert_eq!(json_of(&plain)["available"], true, "{text}");
    } else {
        let reason = doc["reason"].as_str().expect("a reason when unavailable");
        assert_eq!(
            text.trim(),
            format!("no GPU telemetry: {reason}"),
            "one line with the reason, said once"
        );
    }
}
