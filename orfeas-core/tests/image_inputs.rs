//! Loading real encoded files: every supported format and layout, EXIF orientation, and hostile
//! inputs (empty, truncated, random, renamed, header-only and genuine decompression bombs).
//! All files are written by the test itself with real encoders or by hand.
#![allow(clippy::unwrap_used)]

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use image::{DynamicImage, ImageBuffer, ImageFormat, Luma, LumaA, Rgb, Rgba, RgbaImage};
use orfeas_core::image::{load_image, ImageLimits, ImageSource, LoadedImage};
use orfeas_core::Result;

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn load(path: &Path) -> Result<LoadedImage> {
    load_image(
        &ImageSource::Path(path.to_path_buf()),
        &ImageLimits::default(),
    )
}

fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

fn rgba_at(img: &LoadedImage, x: u32, y: u32) -> [u8; 4] {
    let i = (y * img.width + x) as usize * 4;
    [
        img.rgba[i],
        img.rgba[i + 1],
        img.rgba[i + 2],
        img.rgba[i + 3],
    ]
}

/// Asserts the error code and that the message names the file.
fn assert_err(result: Result<LoadedImage>, code: &str, name: &str) {
    let err = result
        .err()
        .unwrap_or_else(|| panic!("{name}: expected {code}"));
    assert_eq!(err.code(), code, "{name}: {err}");
    assert!(
        err.to_string().contains(name),
        "message does not name {name}: {err}"
    );
}

/// CRC-32 (PNG chunk checksum), bit by bit: the test must not trust the code under test.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

fn png_header(width: u32, height: u32, bit_depth: u8, color_type: u8) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[bit_depth, color_type, 0, 0, 0]);
    png_chunk(&mut out, b"IHDR", &ihdr);
    out
}

#[test]
fn png_layouts() {
    let dir = tempfile::tempdir().unwrap();
    let (w, h) = (7, 5);

    let gray = ImageBuffer::from_fn(w, h, |x, y| Luma([(x * 30 + y) as u8]));
    let img = load(&write(
        dir.path(),
        "gray.png",
        &encode(&DynamicImage::ImageLuma8(gray), ImageFormat::Png),
    ))
    .unwrap();
    assert_eq!(
        (img.width, img.height, img.has_alpha, img.gray16),
        (w, h, false, false)
    );
    assert_eq!(rgba_at(&img, 2, 1), [61, 61, 61, 255]);
    assert!((img.luma[(w + 2) as usize] - 61.0 / 255.0).abs() < 1e-6);

    let ga = ImageBuffer::from_fn(w, h, |x, _| LumaA([200, if x == 0 { 0 } else { 255 }]));
    let img = load(&write(
        dir.path(),
        "ga.png",
        &encode(&DynamicImage::ImageLumaA8(ga), ImageFormat::Png),
    ))
    .unwrap();
    assert!(img.has_alpha);
    assert_eq!(rgba_at(&img, 0, 0)[3], 0);

    let opaque = ImageBuffer::from_fn(w, h, |_, _| LumaA([10, 255]));
    let img = load(&write(
        dir.path(),
        "opaque.png",
        &encode(&DynamicImage::ImageLumaA8(opaque), ImageFormat::Png),
    ))
    .unwrap();
    assert!(!img.has_alpha, "an all-opaque alpha channel is no alpha");

    let rgb = ImageBuffer::from_fn(w, h, |x, y| Rgb([x as u8 * 20, y as u8 * 40, 7]));
    let img = load(&write(
        dir.path(),
        "rgb.png",
        &encode(&DynamicImage::ImageRgb8(rgb), ImageFormat::Png),
    ))
    .unwrap();
    assert_eq!(rgba_at(&img, 3, 2), [60, 80, 7, 255]);
    let expect = (0.2126 * 60.0 + 0.7152 * 80.0 + 0.0722 * 7.0) / 255.0;
    assert!((img.luma[(2 * w + 3) as usize] - expect).abs() < 1e-5);

    let rgba = ImageBuffer::from_fn(w, h, |x, y| {
        Rgba([255, 0, 0, if x + y == 0 { 10 } else { 255 }])
    });
    let img = load(&write(
        dir.path(),
        "rgba.png",
        &encode(&DynamicImage::ImageRgba8(rgba), ImageFormat::Png),
    ))
    .unwrap();
    assert!(img.has_alpha);
    assert_eq!(rgba_at(&img, 0, 0), [255, 0, 0, 10]);
}

#[test]
fn palette_png_is_expanded() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut bytes, 4, 2);
        enc.set_color(png::ColorType::Indexed);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_palette(vec![255, 0, 0, 0, 255, 0, 0, 0, 255]);
        enc.set_trns(vec![255, 255, 0]);
        let mut writer = enc.write_header().unwrap();
        writer.write_image_data(&[0, 1, 2, 0, 1, 1, 0, 0]).unwrap();
    }
    let img = load(&write(dir.path(), "palette.png", &bytes)).unwrap();
    assert_eq!((img.width, img.height), (4, 2));
    assert_eq!(rgba_at(&img, 0, 0), [255, 0, 0, 255]);
    assert_eq!(rgba_at(&img, 1, 0), [0, 255, 0, 255]);
    assert_eq!(rgba_at(&img, 2, 0), [0, 0, 255, 0]);
    assert!(img.has_alpha);
}

#[test]
fn sixteen_bit_pngs_keep_precision() {
    let dir = tempfile::tempdir().unwrap();
    // Neighbouring values differ by one 16-bit step, invisible at 8 bits.
    let gray = ImageBuffer::from_fn(16, 4, |x, y| Luma([30_000u16 + (y * 16 + x) as u16]));
    let img = load(&write(
        dir.path(),
        "height.png",
        &encode(&DynamicImage::ImageLuma16(gray), ImageFormat::Png),
    ))
    .unwrap();
    assert!(img.gray16 && !img.has_alpha);
    for (i, &l) in img.luma.iter().enumerate() {
        assert_eq!(l, (30_000 + i as u32) as f32 / 65535.0);
    }

    let rgb = ImageBuffer::from_fn(4, 4, |x, _| Rgb([1000u16 + x as u16, 1000, 1000]));
    let img = load(&write(
        dir.path(),
        "rgb16.png",
        &encode(&DynamicImage::ImageRgb16(rgb), ImageFormat::Png),
    ))
    .unwrap();
    assert!(!img.gray16);
    assert!(
        img.luma[1] > img.luma[0],
        "16-bit RGB luma keeps steps below 8-bit resolution"
    );
}

#[test]
fn other_formats() {
    let dir = tempfile::tempdir().unwrap();
    let (w, h) = (32, 24);
    let rgb = DynamicImage::ImageRgb8(ImageBuffer::from_fn(w, h, |x, y| {
        if x < 16 {
            Rgb([220, 30, 30])
        } else {
            Rgb([30, 30, 220 - y as u8])
        }
    }));
    for (name, format) in [
        ("a.jpg", ImageFormat::Jpeg),
        ("a.bmp", ImageFormat::Bmp),
        ("a.tiff", ImageFormat::Tiff),
    ] {
        let img = load(&write(dir.path(), name, &encode(&rgb, format))).unwrap();
        assert_eq!((img.width, img.height), (w, h), "{name}");
        let p = rgba_at(&img, 4, 4);
        assert!(p[0] > 180 && p[2] < 80, "{name}: {p:?}");
    }

    let rgba = RgbaImage::from_fn(w, h, |x, _| Rgba([0, 200, 0, if x < 4 { 0 } else { 255 }]));
    let mut webp = Vec::new();
    image::codecs::webp::WebPEncoder::new_lossless(&mut webp)
        .encode(rgba.as_raw(), w, h, image::ExtendedColorType::Rgba8)
        .unwrap();
    let img = load(&write(dir.path(), "a.webp", &webp)).unwrap();
    assert_eq!(rgba_at(&img, 10, 10), [0, 200, 0, 255]);
    assert!(img.has_alpha);

    // A named extension that lies does not matter: the bytes decide.
    let img = load(&write(
        dir.path(),
        "actually_a_bmp.png",
        &encode(&rgb, ImageFormat::Bmp),
    ))
    .unwrap();
    assert_eq!(img.width, w);
}

#[test]
fn gif_uses_the_first_frame() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = Vec::new();
    {
        let mut enc = image::codecs::gif::GifEncoder::new(&mut bytes);
        let red = RgbaImage::from_pixel(8, 6, Rgba([255, 0, 0, 255]));
        let blue = RgbaImage::from_pixel(8, 6, Rgba([0, 0, 255, 255]));
        enc.encode_frames(vec![image::Frame::new(red), image::Frame::new(blue)])
            .unwrap();
    }
    let img = load(&write(dir.path(), "anim.gif", &bytes)).unwrap();
    assert_eq!((img.width, img.height), (8, 6));
    let p = rgba_at(&img, 3, 3);
    assert!(p[0] > 200 && p[2] < 50, "{p:?}");
}

/// An APP1 segment with a little-endian TIFF header and one IFD0 entry: Orientation = `value`.
fn exif_app1(value: u16) -> Vec<u8> {
    let mut tiff = b"II*\0".to_vec();
    tiff.extend_from_slice(&8u32.to_le_bytes()); // IFD0 offset
    tiff.extend_from_slice(&1u16.to_le_bytes()); // one entry
    tiff.extend_from_slice(&0x0112u16.to_le_bytes()); // Orientation
    tiff.extend_from_slice(&3u16.to_le_bytes()); // SHORT
    tiff.extend_from_slice(&1u32.to_le_bytes()); // count
    tiff.extend_from_slice(&value.to_le_bytes());
    tiff.extend_from_slice(&[0, 0]); // value padding
    tiff.extend_from_slice(&0u32.to_le_bytes()); // no next IFD
    let mut payload = b"Exif\0\0".to_vec();
    payload.extend_from_slice(&tiff);
    let mut seg = vec![0xff, 0xe1];
    seg.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    seg.extend_from_slice(&payload);
    seg
}

#[test]
fn jpeg_exif_orientation_is_applied() {
    let dir = tempfile::tempdir().unwrap();
    let (w, h) = (48, 32);
    // Red block in the top-left corner, gray elsewhere.
    let src = DynamicImage::ImageRgb8(ImageBuffer::from_fn(w, h, |x, y| {
        if x < 16 && y < 16 {
            Rgb([230, 20, 20])
        } else {
            Rgb([128, 128, 128])
        }
    }));
    let jpeg = encode(&src, ImageFormat::Jpeg);
    assert_eq!(&jpeg[..2], &[0xff, 0xd8]);
    let mut with_exif = jpeg[..2].to_vec();
    with_exif.extend_from_slice(&exif_app1(6));
    with_exif.extend_from_slice(&jpeg[2..]);

    let plain = load(&write(dir.path(), "plain.jpg", &jpeg)).unwrap();
    assert_eq!((plain.width, plain.height), (w, h));
    let img = load(&write(dir.path(), "rotated.jpg", &with_exif)).unwrap();
    // Orientation 6: rotate 90° clockwise to display; the top-left corner goes to the top right.
    assert_eq!((img.width, img.height), (h, w));
    let tr = rgba_at(&img, img.width - 4, 4);
    let tl = rgba_at(&img, 4, 4);
    assert!(tr[0] > 180 && tr[1] < 80, "top right {tr:?}");
    assert!((i32::from(tl[0]) - 128).abs() < 30, "top left {tl:?}");
}

#[test]
fn tiny_and_thin_images() {
    let dir = tempfile::tempdir().unwrap();
    let one = DynamicImage::ImageRgb8(ImageBuffer::from_pixel(1, 1, Rgb([9, 99, 199])));
    let img = load(&write(
        dir.path(),
        "one.png",
        &encode(&one, ImageFormat::Png),
    ))
    .unwrap();
    assert_eq!((img.width, img.height), (1, 1));
    assert_eq!(rgba_at(&img, 0, 0), [9, 99, 199, 255]);
    assert_eq!(img.fit_within(512).width, 1);

    let strip = DynamicImage::ImageLuma8(ImageBuffer::from_fn(10_000, 1, |x, _| {
        Luma([(x % 256) as u8])
    }));
    let img = load(&write(
        dir.path(),
        "strip.png",
        &encode(&strip, ImageFormat::Png),
    ))
    .unwrap();
    assert_eq!((img.width, img.height), (10_000, 1));
    let small = img.fit_within(512);
    assert_eq!((small.width, small.height), (512, 1));
    assert!(small.luma.iter().all(|v| v.is_finite()));
}

#[test]
fn hostile_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_err(
        load(&write(d, "empty.png", b"")),
        "ERR_EMPTY_INPUT",
        "empty.png",
    );

    let noise = DynamicImage::ImageRgb8(ImageBuffer::from_fn(64, 64, |x, y| {
        let v = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)).rotate_left(9);
        Rgb([v as u8, (v >> 8) as u8, (v >> 16) as u8])
    }));
    let png = encode(&noise, ImageFormat::Png);
    assert_err(
        load(&write(d, "truncated.png", &png[..png.len() / 2])),
        "ERR_IMAGE_DECODE",
        "truncated.png",
    );
    let jpeg = encode(&noise, ImageFormat::Jpeg);
    // The JPEG decoder is lenient with truncated scans (missing blocks decode as gray); it must
    // simply not panic and, if it fails, fail with a decode error that names the file.
    if let Err(e) = load(&write(d, "truncated.jpg", &jpeg[..jpeg.len() / 3])) {
        assert_eq!(e.code(), "ERR_IMAGE_DECODE");
        assert!(e.to_string().contains("truncated.jpg"));
    }
    assert_err(
        load(&write(d, "cut.jpg", &jpeg[..40])),
        "ERR_IMAGE_DECODE",
        "cut.jpg",
    );

    let mut state = 0x2545_f491_4f6c_dd1du64;
    let random: Vec<u8> = (0..4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 32) as u8
        })
        .collect();
    assert_err(
        load(&write(d, "random.bin", &random)),
        "ERR_UNSUPPORTED_FORMAT",
        "random.bin",
    );
    assert_err(
        load(&write(d, "notes.txt", b"just some text\nnot an image\n")),
        "ERR_UNSUPPORTED_FORMAT",
        "notes.txt",
    );
    assert_err(
        load(&write(
            d,
            "report.png",
            b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n",
        )),
        "ERR_UNSUPPORTED_FORMAT",
        "report.png",
    );

    // A valid IHDR claiming 30000×30000 and nothing else.
    let mut header_only = png_header(30_000, 30_000, 8, 0);
    png_chunk(&mut header_only, b"IEND", &[]);
    assert_err(
        load(&write(d, "header_only.png", &header_only)),
        "ERR_IMAGE_TOO_LARGE",
        "header_only.png",
    );

    let mut zero = png_header(0, 10, 8, 0);
    png_chunk(&mut zero, b"IEND", &[]);
    assert!(load(&write(d, "zero.png", &zero)).is_err());

    // In-memory sources are named too.
    let err = load_image(
        &ImageSource::Bytes {
            name: "upload.png".into(),
            bytes: Vec::new().into(),
        },
        &ImageLimits::default(),
    )
    .unwrap_err();
    assert_eq!(err.code(), "ERR_EMPTY_INPUT");
    assert!(err.to_string().contains("upload.png"));

    // The file-size limit is checked from the metadata.
    let limits = ImageLimits {
        max_file_bytes: 100,
        ..ImageLimits::default()
    };
    let err = load_image(&ImageSource::Path(d.join("truncated.png")), &limits).unwrap_err();
    assert_eq!(err.code(), "ERR_IMAGE_TOO_LARGE");

    let missing = load(&d.join("missing.png")).unwrap_err();
    assert_eq!(missing.code(), "ERR_IO");
    assert!(missing.to_string().contains("missing.png"));
}

/// A genuine 30000×30000 8-bit gray PNG whose IDAT is zlib-compressed zero rows (~900 MB of
/// pixels in well under 1 MB): refused from its header without decoding.
#[test]
fn real_png_bomb_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (w, h) = (30_000u32, 30_000u32);
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    let row = vec![0u8; w as usize + 1]; // filter byte 0 + zero pixels
    for _ in 0..h {
        z.write_all(&row).unwrap();
    }
    let idat = z.finish().unwrap();
    let mut bytes = png_header(w, h, 8, 0);
    png_chunk(&mut bytes, b"IDAT", &idat);
    png_chunk(&mut bytes, b"IEND", &[]);
    assert!(bytes.len() < 1_100_000, "bomb is {} bytes", bytes.len());
    let path = write(dir.path(), "bomb.png", &bytes);
    let start = Instant::now();
    let result = load(&path);
    eprintln!(
        "bomb ({} bytes) refused in {:?}",
        bytes.len(),
        start.elapsed()
    );
    assert_err(result, "ERR_IMAGE_TOO_LARGE", "bomb.png");
}

#[test]
fn fit_within_on_a_large_photo() {
    let (w, h) = (4000u32, 3000u32);
    let rgba: Vec<u8> = (0..w * h)
        .flat_map(|i| [(i % 251) as u8, (i % 241) as u8, (i % 239) as u8, 255])
        .collect();
    let luma = (0..w * h).map(|i| (i % 1000) as f32 / 1000.0).collect();
    let img = LoadedImage {
        name: "big".into(),
        width: w,
        height: h,
        rgba,
        luma,
        has_alpha: false,
        gray16: false,
    };
    let start = Instant::now();
    let small = img.fit_within(1024);
    eprintln!(
        "fit_within 4000x3000 -> {}x{}: {:?}",
        small.width,
        small.height,
        start.elapsed()
    );
    assert_eq!((small.width, small.height), (1024, 768));
    let start = Instant::now();
    let medium = img.fit_within(512);
    eprintln!(
        "fit_within 4000x3000 -> {}x{}: {:?}",
        medium.width,
        medium.height,
        start.elapsed()
    );
    assert_eq!((medium.width, medium.height), (512, 384));
    assert_eq!(small.rgba.len(), 1024 * 768 * 4);
    assert_eq!(small.luma.len(), 1024 * 768);
}

/// The committed examples (scripts/make_examples.py) load, mask as intended, and give sane
/// heights with both weight-free estimators.
#[test]
fn committed_examples() {
    use orfeas_core::depth::{InflateEstimator, ReliefEstimator};
    use orfeas_core::mask::estimate_mask;
    use orfeas_core::{CancelToken, DepthEstimator, MaskSource};

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let expected = [
        ("product_bottle.jpg", MaskSource::Border, false),
        ("logo_star.png", MaskSource::Alpha, false),
        ("cat_silhouette.png", MaskSource::Border, false),
        ("terrain_height16.png", MaskSource::None, true),
        ("coin_emboss.jpg", MaskSource::Border, false),
        ("pebble.webp", MaskSource::Border, false),
        ("heart.bmp", MaskSource::Border, false),
        ("strip_wave.png", MaskSource::None, false),
    ];
    for (name, source, gray16) in expected {
        let start = Instant::now();
        let img = load(&dir.join(name)).unwrap().fit_within(512);
        let t_load = start.elapsed();
        let mask = estimate_mask(&img);
        let t_mask = start.elapsed() - t_load;
        assert_eq!(mask.source, source, "{name}: coverage {}", mask.coverage());
        assert_eq!(img.gray16, gray16, "{name}");
        let cancel = CancelToken::new();
        let relief = ReliefEstimator::default()
            .estimate(&img, &mask, &cancel)
            .unwrap();
        let t_relief = start.elapsed() - t_load - t_mask;
        let inflate = InflateEstimator::default()
            .estimate(&img, &mask, &cancel)
            .unwrap();
        let t_inflate = start.elapsed() - t_load - t_mask - t_relief;
        for hm in [&relief, &inflate] {
            assert!(
                hm.values()
                    .iter()
                    .all(|v| v.is_finite() && (0.0..=1.0).contains(v)),
                "{name}"
            );
            let top = hm
                .values()
                .iter()
                .zip(&mask.data)
                .filter(|(_, &m)| m)
                .map(|(v, _)| *v)
                .fold(0.0f32, f32::max);
            assert!(top > 0.99, "{name}: max height {top}");
        }
        eprintln!(
            "{name:22} {}x{} mask {:?} {:.1}%  load+fit {t_load:?} mask {t_mask:?} relief {t_relief:?} inflate {t_inflate:?}",
            img.width,
            img.height,
            mask.source,
            100.0 * mask.coverage()
        );
    }
}

/// Not a check: a looking glass for acceptance runs (`scripts/acceptance.sh`). For every image
/// in `$ORFEAS_DUMP_IN`, runs the real pipeline (medium preset, `auto` depth) and writes
/// `<stem>.mask.png` (white = foreground) and `<stem>.height.png` into `$ORFEAS_DUMP_OUT`, and
/// prints one tab-separated line per input: name, working size, mask source, coverage, depth,
/// triangles.
///
/// `ORFEAS_DUMP_IN=dir ORFEAS_DUMP_OUT=dir cargo test --release -p orfeas-core --test image_inputs -- --ignored dump_masks --nocapture`
#[test]
#[ignore = "diagnostic dump, run by scripts/acceptance.sh"]
#[allow(clippy::print_stdout)] // a diagnostic that prints a table for scripts/acceptance.sh
fn dump_masks() {
    use orfeas_core::mask::estimate_mask;
    use orfeas_core::{image_to_model, CancelToken, DepthMethod, GenerateSettings};

    let (Ok(input), Ok(out)) = (
        std::env::var("ORFEAS_DUMP_IN"),
        std::env::var("ORFEAS_DUMP_OUT"),
    ) else {
        eprintln!("set ORFEAS_DUMP_IN and ORFEAS_DUMP_OUT");
        return;
    };
    let out = PathBuf::from(out);
    std::fs::create_dir_all(&out).unwrap();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&input)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    let settings = GenerateSettings::default();
    for path in paths {
        let stem = path.file_stem().unwrap().to_string_lossy().to_string();
        let Ok(img) = load(&path) else {
            println!("{stem}\tunreadable");
            continue;
        };
        let work = img.fit_within(settings.effective_preset().working_size);
        let mask = if work.gray16 {
            orfeas_core::Mask::full(work.width, work.height)
        } else {
            estimate_mask(&work)
        };
        let px: Vec<u8> = mask.data.iter().map(|&b| if b { 255 } else { 0 }).collect();
        ImageBuffer::<Luma<u8>, _>::from_raw(work.width, work.height, px)
            .unwrap()
            .save(out.join(format!("{stem}.mask.png")))
            .unwrap();
        let mut noop = |_: orfeas_core::Stage, _: f32| {};
        let source = ImageSource::Path(path.clone());
        match image_to_model(
            &source,
            &settings,
            DepthMethod::Auto,
            &ImageLimits::default(),
            &CancelToken::new(),
            &mut noop,
        ) {
            Ok(model) => {
                let hm = model.depth.as_ref().expect("a relief has a height map");
                let px: Vec<u8> = hm
                    .values()
                    .iter()
                    .map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
                    .collect();
                ImageBuffer::<Luma<u8>, _>::from_raw(hm.width(), hm.height(), px)
                    .unwrap()
                    .save(out.join(format!("{stem}.height.png")))
                    .unwrap();
                let r = &model.report;
                println!(
                    "{stem}\t{}x{}\t{:?}\t{:.1}%\t{}\t{}",
                    hm.width(),
                    hm.height(),
                    r.mask,
                    100.0 * mask.coverage(),
                    r.depth,
                    r.triangles
                );
            }
            Err(e) => println!("{stem}\terror {e}"),
        }
    }
}

/// JPEG pixels are libjpeg-turbo's, bit for bit: FNV-1a over the RGB bytes that PIL 13.0
/// (libjpeg-turbo) decodes from the committed examples, `Image.open(f).convert("RGB")` — one
/// colour (4:2:0 chroma) and one grayscale JPEG. The image crate's own decoder differs on ~13 %
/// of samples, which moves Depth Anything's output by 1–3 % against transformers.
#[test]
fn jpeg_pixels_match_libjpeg_turbo() {
    let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples");
    for (name, want) in [
        ("product_bottle.jpg", 0x9024_e683_8fe1_bdd4u64),
        ("coin_emboss.jpg", 0x757b_e861_a9bf_5af0),
    ] {
        let img = load(&examples.join(name)).expect("example loads");
        let fnv = img
            .rgba
            .chunks_exact(4)
            .flat_map(|p| &p[..3])
            .fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
                (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
            });
        assert_eq!(fnv, want, "{name}: RGB differs from libjpeg-turbo's decode");
    }
}
