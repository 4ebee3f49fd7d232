//! The image decoder (`load_image`) on hostile bytes.
//!
//! Seeds are small valid images of every format and layout, encoded in the test by the image
//! crate, then mutated: bit flips, overwritten bytes and words, truncation at any point,
//! inserted and removed runs, junk EXIF and random chunks, and headers rewritten to claim
//! dimensions beyond the limits. Property: `Ok` with an image within the limits and buffers
//! of the stated size, or an error with one of the decoder's codes naming the input; never a
//! panic, never an allocation beyond what the limits allow.

use std::io::Cursor;

use image::{DynamicImage, ImageBuffer, ImageFormat, Luma, LumaA, Rgb, Rgba};
use orfeas_core::image::{load_image, ImageLimits, ImageSource};
use proptest::prelude::*;
use proptest::sample::Index;

use crate::alloc_cap::assert_no_huge_allocation;

const NAME: &str = "hostile-input.img";

/// The formats orfeas reads, all of which the image crate can also write.
const FORMATS: [ImageFormat; 6] = [
    ImageFormat::Png,
    ImageFormat::Jpeg,
    ImageFormat::WebP,
    ImageFormat::Bmp,
    ImageFormat::Tiff,
    ImageFormat::Gif,
];

/// A small valid image: its format, size, channel layout and pixel pattern.
#[derive(Clone, Debug)]
pub struct Seed {
    pub format: ImageFormat,
    pub width: u32,
    pub height: u32,
    /// 0 L8, 1 LA8, 2 RGB8, 3 RGBA8, 4 L16, 5 RGB16, 6 RGBA16.
    pub layout: u8,
    pub salt: u32,
}

impl Seed {
    fn image(&self) -> DynamicImage {
        let (w, h, s) = (self.width, self.height, self.salt);
        let v = move |x: u32, y: u32, c: u32| -> u32 {
            (x.wrapping_mul(73) ^ y.wrapping_mul(151) ^ c.wrapping_mul(31))
                .wrapping_add(s)
                .wrapping_mul(2_654_435_761)
                >> 16
        };
        let b = move |x, y, c| v(x, y, c) as u8;
        let w16 = move |x, y, c| v(x, y, c) as u16;
        match self.layout % 7 {
            0 => ImageBuffer::from_fn(w, h, |x, y| Luma([b(x, y, 0)])).into(),
            1 => ImageBuffer::from_fn(w, h, |x, y| LumaA([b(x, y, 0), b(x, y, 1)])).into(),
            2 => {
                ImageBuffer::from_fn(w, h, |x, y| Rgb([b(x, y, 0), b(x, y, 1), b(x, y, 2)])).into()
            }
            3 => ImageBuffer::from_fn(w, h, |x, y| {
                Rgba([b(x, y, 0), b(x, y, 1), b(x, y, 2), b(x, y, 3)])
            })
            .into(),
            4 => ImageBuffer::from_fn(w, h, |x, y| Luma([w16(x, y, 0)])).into(),
            5 => ImageBuffer::from_fn(w, h, |x, y| Rgb([w16(x, y, 0), w16(x, y, 1), w16(x, y, 2)]))
                .into(),
            _ => ImageBuffer::from_fn(w, h, |x, y| {
                Rgba([w16(x, y, 0), w16(x, y, 1), w16(x, y, 2), w16(x, y, 3)])
            })
            .into(),
        }
    }

    /// The encoded bytes; layouts a format's encoder refuses are converted to RGB8/RGBA8.
    pub fn encode(&self) -> Vec<u8> {
        let img = self.image();
        let attempts = [img.clone(), DynamicImage::ImageRgba8(img.to_rgba8()), {
            DynamicImage::ImageRgb8(img.to_rgb8())
        }];
        for candidate in attempts {
            let mut out = Cursor::new(Vec::new());
            if candidate.write_to(&mut out, self.format).is_ok() {
                return out.into_inner();
            }
        }
        panic!("no layout of {self:?} encodes")
    }
}

fn seed() -> impl Strategy<Value = Seed> {
    (
        prop::sample::select(FORMATS.to_vec()),
        1u32..=24,
        1u32..=24,
        0u8..7,
        any::<u32>(),
    )
        .prop_map(|(format, width, height, layout, salt)| Seed {
            format,
            width,
            height,
            layout,
            salt,
        })
}

/// One change to an encoded file.
#[derive(Clone, Debug)]
pub enum Mutation {
    FlipBit(Index, u8),
    SetByte(Index, u8),
    /// A 32-bit word, either byte order: where a length or a dimension often sits.
    SetWord(Index, u32, bool),
    Truncate(Index),
    Insert(Index, Vec<u8>),
    Remove(Index, usize),
    /// Duplicates a run (repeated chunks, markers, IFDs).
    Repeat(Index, usize),
    /// A chunk, segment or block of junk in the format's own framing (PNG chunk with a
    /// valid CRC, JPEG APP segment, EXIF/TIFF structure), right after the signature.
    Junk(JunkKind, Vec<u8>),
    /// The format's declared width and height rewritten.
    Declare(u32, u32),
}

#[derive(Clone, Copy, Debug)]
pub enum JunkKind {
    /// PNG `eXIf` / JPEG `APP1 Exif` holding a TIFF structure with random entries.
    Exif,
    /// PNG chunk of a random (ancillary or critical) type / JPEG APPn or COM segment.
    Chunk([u8; 4]),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let junk_kind = prop_oneof![
        Just(JunkKind::Exif),
        any::<[u8; 4]>().prop_map(JunkKind::Chunk),
        prop::sample::select(vec![
            *b"tEXt", *b"zTXt", *b"iCCP", *b"PLTE", *b"IDAT", *b"IEND"
        ])
        .prop_map(JunkKind::Chunk),
    ];
    let huge = prop_oneof![
        1u32..=64,
        Just(0),
        Just(65_535),
        Just(65_536),
        Just(1 << 24),
        Just(i32::MAX as u32),
        Just(u32::MAX),
        any::<u32>(),
    ];
    prop_oneof![
        4 => (any::<Index>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(i, v)| Mutation::SetByte(i, v)),
        2 => (any::<Index>(), huge.clone(), any::<bool>())
            .prop_map(|(i, v, be)| Mutation::SetWord(i, v, be)),
        3 => any::<Index>().prop_map(Mutation::Truncate),
        1 => (any::<Index>(), prop::collection::vec(any::<u8>(), 1..32))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => (any::<Index>(), 1usize..64).prop_map(|(i, n)| Mutation::Remove(i, n)),
        1 => (any::<Index>(), 1usize..64).prop_map(|(i, n)| Mutation::Repeat(i, n)),
        2 => (junk_kind, prop::collection::vec(any::<u8>(), 0..64))
            .prop_map(|(k, b)| Mutation::Junk(k, b)),
        2 => (huge.clone(), huge).prop_map(|(w, h)| Mutation::Declare(w, h)),
    ]
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = flate2::Crc::new();
    crc.update(bytes);
    crc.sum()
}

fn png_chunk(kind: [u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[4..]);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// A little-endian TIFF structure (what EXIF holds): one IFD of random entries, the
/// orientation tag among them, followed by the random bytes the offsets point into.
fn exif_tiff(junk: &[u8]) -> Vec<u8> {
    let mut out = b"II*\0\x08\0\0\0".to_vec();
    let entries: Vec<&[u8]> = junk.chunks(8).collect();
    out.extend_from_slice(&((entries.len() + 1) as u16).to_le_bytes());
    // Orientation (0x0112), SHORT, count 1, a value from the junk (valid ones are 1..=8).
    let orientation = u16::from(junk.first().copied().unwrap_or(9) % 12);
    out.extend_from_slice(&[0x12, 0x01, 3, 0, 1, 0, 0, 0]);
    out.extend_from_slice(&orientation.to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    for e in &entries {
        let mut entry = [0u8; 12];
        entry[..e.len()].copy_from_slice(e);
        out.extend_from_slice(&entry);
    }
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(junk);
    out
}

/// Applies `m` to `bytes`, an encoding of `format`.
pub fn apply(bytes: &mut Vec<u8>, format: ImageFormat, m: &Mutation) {
    let len = bytes.len();
    if len == 0 {
        return;
    }
    match m {
        Mutation::FlipBit(i, bit) => bytes[i.index(len)] ^= 1 << bit,
        Mutation::SetByte(i, v) => bytes[i.index(len)] = *v,
        Mutation::SetWord(i, v, be) => {
            let word = if *be {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            };
            let at = i.index(len);
            for (k, b) in word.iter().enumerate() {
                if let Some(slot) = bytes.get_mut(at + k) {
                    *slot = *b;
                }
            }
        }
        Mutation::Truncate(i) => bytes.truncate(i.index(len)),
        Mutation::Insert(i, run) => {
            let at = i.index(len + 1);
            bytes.splice(at..at, run.iter().copied());
        }
        Mutation::Remove(i, n) => {
            let at = i.index(len);
            bytes.drain(at..(at + n).min(len));
        }
        Mutation::Repeat(i, n) => {
            let at = i.index(len);
            let run: Vec<u8> = bytes[at..(at + n).min(len)].to_vec();
            bytes.splice(at..at, run);
        }
        Mutation::Junk(kind, junk) => insert_junk(bytes, format, *kind, junk),
        Mutation::Declare(w, h) => declare(bytes, format, *w, *h),
    }
}

fn insert_junk(bytes: &mut Vec<u8>, format: ImageFormat, kind: JunkKind, junk: &[u8]) {
    match format {
        ImageFormat::Png if bytes.len() >= 33 => {
            let chunk = match kind {
                JunkKind::Exif => png_chunk(*b"eXIf", &exif_tiff(junk)),
                JunkKind::Chunk(k) => png_chunk(k, junk),
            };
            // After the signature and IHDR.
            bytes.splice(33..33, chunk);
        }
        ImageFormat::Jpeg if bytes.len() >= 2 => {
            let (marker, body) = match kind {
                JunkKind::Exif => {
                    let mut body = b"Exif\0\0".to_vec();
                    body.extend_from_slice(&exif_tiff(junk));
                    (0xE1, body)
                }
                JunkKind::Chunk(k) => (0xE0 | (k[0] & 0x0F), junk.to_vec()),
            };
            let mut segment = vec![0xFF, marker];
            segment.extend_from_slice(&((body.len() + 2).min(0xFFFF) as u16).to_be_bytes());
            segment.extend_from_slice(&body);
            bytes.splice(2..2, segment);
        }
        ImageFormat::Tiff => {
            // A second TIFF as the first IFD: random entries, random orientation.
            let mut tiff = exif_tiff(junk);
            if bytes.starts_with(b"MM") {
                tiff[..4].copy_from_slice(b"MM\0*");
                tiff[4..8].copy_from_slice(&8u32.to_be_bytes());
            }
            let n = bytes.len().min(tiff.len());
            bytes[..n].copy_from_slice(&tiff[..n]);
        }
        _ => {
            // WebP, BMP, GIF: junk right after the signature.
            let at = 12.min(bytes.len());
            bytes.splice(at..at, junk.iter().copied());
        }
    }
}

/// Rewrites the declared dimensions of an encoding of `format` (the fields its header keeps
/// them in; checksums fixed where the format has one, so the claim is what gets checked).
fn declare(bytes: &mut Vec<u8>, format: ImageFormat, w: u32, h: u32) {
    let put = |bytes: &mut Vec<u8>, at: usize, value: &[u8]| {
        if bytes.len() >= at + value.len() {
            bytes[at..at + value.len()].copy_from_slice(value);
        }
    };
    match format {
        ImageFormat::Png if bytes.len() >= 33 => {
            put(bytes, 16, &w.to_be_bytes());
            put(bytes, 20, &h.to_be_bytes());
            let crc = crc32(&bytes[12..29]);
            put(bytes, 29, &crc.to_be_bytes());
        }
        ImageFormat::Jpeg => {
            // Every SOFn: precision, then height and width (16 bits each).
            let mut i = 2;
            while i + 9 <= bytes.len() {
                if bytes[i] == 0xFF
                    && matches!(bytes[i + 1], 0xC0..=0xCF)
                    && !matches!(bytes[i + 1], 0xC4 | 0xC8 | 0xCC)
                {
                    put(bytes, i + 5, &(h as u16).to_be_bytes());
                    put(bytes, i + 7, &(w as u16).to_be_bytes());
                }
                i += 1;
            }
        }
        ImageFormat::Bmp => {
            put(bytes, 18, &w.to_le_bytes());
            put(bytes, 22, &h.to_le_bytes());
        }
        ImageFormat::Gif => {
            // Logical screen, then the first image descriptor's size.
            put(bytes, 6, &(w as u16).to_le_bytes());
            put(bytes, 8, &(h as u16).to_le_bytes());
            if let Some(d) = bytes.iter().skip(13).position(|&b| b == 0x2C) {
                let d = d + 13;
                put(bytes, d + 5, &(w as u16).to_le_bytes());
                put(bytes, d + 7, &(h as u16).to_le_bytes());
            }
        }
        ImageFormat::WebP => {
            // VP8L: 14 bits of width - 1, 14 of height - 1 after the 0x2F signature byte;
            // VP8X: 24-bit canvas width - 1 and height - 1.
            if bytes.get(12..16) == Some(b"VP8L") {
                let (w1, h1) = (w.wrapping_sub(1) & 0x3FFF, h.wrapping_sub(1) & 0x3FFF);
                let bits =
                    w1 | (h1 << 14) | (u32::from(bytes.get(24).copied().unwrap_or(0) >> 4) << 28);
                put(bytes, 21, &bits.to_le_bytes());
            } else if bytes.get(12..16) == Some(b"VP8X") {
                put(bytes, 24, &w.wrapping_sub(1).to_le_bytes()[..3]);
                put(bytes, 27, &h.wrapping_sub(1).to_le_bytes()[..3]);
            }
        }
        ImageFormat::Tiff => tiff_declare(bytes, w, h),
        _ => {}
    }
}

/// Sets ImageWidth (256) and ImageLength (257) of the first IFD as LONG values.
fn tiff_declare(bytes: &mut [u8], w: u32, h: u32) {
    let be = bytes.starts_with(b"MM");
    let u16_at = |b: &[u8], at: usize| -> Option<usize> {
        let v = b.get(at..at + 2)?;
        Some(usize::from(if be {
            u16::from_be_bytes([v[0], v[1]])
        } else {
            u16::from_le_bytes([v[0], v[1]])
        }))
    };
    let Some(ifd) = bytes.get(4..8).map(|v| {
        let v = [v[0], v[1], v[2], v[3]];
        (if be {
            u32::from_be_bytes(v)
        } else {
            u32::from_le_bytes(v)
        }) as usize
    }) else {
        return;
    };
    let Some(count) = u16_at(bytes, ifd) else {
        return;
    };
    for e in 0..count {
        let at = ifd + 2 + 12 * e;
        let Some(tag) = u16_at(bytes, at) else {
            return;
        };
        let value = match tag {
            256 => w,
            257 => h,
            _ => continue,
        };
        let (ty, one, v) = if be {
            (4u16.to_be_bytes(), 1u32.to_be_bytes(), value.to_be_bytes())
        } else {
            (4u16.to_le_bytes(), 1u32.to_le_bytes(), value.to_le_bytes())
        };
        if bytes.len() >= at + 12 {
            bytes[at + 2..at + 4].copy_from_slice(&ty);
            bytes[at + 4..at + 8].copy_from_slice(&one);
            bytes[at + 8..at + 12].copy_from_slice(&v);
        }
    }
}

/// Limits small enough that whatever they allow is a small allocation: mostly roomy for the
/// seeds, sometimes tiny, sometimes right at the seed's own size (one pixel either side of
/// its width, height and pixel count).
#[derive(Clone, Debug)]
pub enum LimitsSpec {
    Roomy,
    Tiny(ImageLimits),
    AtSeed(i32, i32, i32),
}

impl LimitsSpec {
    pub fn limits(&self, seed: &Seed) -> ImageLimits {
        let roomy = ImageLimits {
            max_width: 4096,
            max_height: 4096,
            max_pixels: 1 << 22,
            max_file_bytes: 1 << 20,
        };
        let near = |v: u32, d: i32| (i64::from(v) + i64::from(d)).max(1) as u64;
        match self {
            LimitsSpec::Roomy => roomy,
            LimitsSpec::Tiny(l) => *l,
            LimitsSpec::AtSeed(dw, dh, dp) => ImageLimits {
                max_width: near(seed.width, *dw) as u32,
                max_height: near(seed.height, *dh) as u32,
                max_pixels: near(seed.width * seed.height, *dp),
                ..roomy
            },
        }
    }
}

fn limits() -> impl Strategy<Value = LimitsSpec> {
    prop_oneof![
        4 => Just(LimitsSpec::Roomy),
        1 => (1u32..=64, 1u32..=64, 1u64..=4096, 1u64..=8192).prop_map(|(w, h, p, b)| {
            LimitsSpec::Tiny(ImageLimits {
                max_width: w,
                max_height: h,
                max_pixels: p,
                max_file_bytes: b,
            })
        }),
        2 => (-1i32..=1, -1i32..=1, -1i32..=1).prop_map(|(w, h, p)| LimitsSpec::AtSeed(w, h, p)),
    ]
}

/// The property: a valid image within the limits, or a coded error naming the input.
pub fn check_decode(bytes: Vec<u8>, limits: &ImageLimits) -> Result<(), TestCaseError> {
    let source = ImageSource::Bytes {
        name: NAME.into(),
        bytes: bytes.into(),
    };
    match load_image(&source, limits) {
        Ok(img) => {
            let (w, h) = (u64::from(img.width), u64::from(img.height));
            prop_assert!(w >= 1 && h >= 1, "{w}x{h}");
            prop_assert!(img.width <= limits.max_width && img.height <= limits.max_height);
            prop_assert!(w * h <= limits.max_pixels, "{w}x{h} over {limits:?}");
            prop_assert_eq!(img.rgba.len() as u64, w * h * 4);
            prop_assert_eq!(img.luma.len() as u64, w * h);
            prop_assert!(img.luma.iter().all(|v| (0.0..=1.0).contains(v)));
        }
        Err(e) => {
            prop_assert!(
                matches!(
                    e.code(),
                    "ERR_EMPTY_INPUT"
                        | "ERR_UNSUPPORTED_FORMAT"
                        | "ERR_IMAGE_TOO_LARGE"
                        | "ERR_IMAGE_DECODE"
                ),
                "unexpected code {}: {e}",
                e.code()
            );
            prop_assert!(e.to_string().contains(NAME), "not named: {e}");
        }
    }
    assert_no_huge_allocation("image decode");
    Ok(())
}

proptest! {
    #![proptest_config(crate::config(256))]

    /// Valid images with one to four mutations.
    #[test]
    fn mutated_images_decode_or_fail_cleanly(
        seed in seed(),
        mutations in prop::collection::vec(mutation(), 1..=4),
        limits in limits(),
    ) {
        let mut bytes = seed.encode();
        for m in &mutations {
            apply(&mut bytes, seed.format, m);
        }
        check_decode(bytes, &limits.limits(&seed))?;
    }

    /// Valid images against limits at their own size: decoded exactly when within them.
    #[test]
    fn valid_images_are_decoded_exactly_within_the_limits(
        seed in seed(),
        (dw, dh, dp) in (-1i32..=1, -1i32..=1, -1i32..=1),
    ) {
        let limits = LimitsSpec::AtSeed(dw, dh, dp).limits(&seed);
        let within = seed.width <= limits.max_width
            && seed.height <= limits.max_height
            && u64::from(seed.width * seed.height) <= limits.max_pixels;
        let source = ImageSource::Bytes { name: NAME.into(), bytes: seed.encode().into() };
        match load_image(&source, &limits) {
            Ok(img) => {
                prop_assert!(within, "{limits:?} let a {}x{} image through", img.width, img.height);
                prop_assert_eq!((img.width, img.height), (seed.width, seed.height));
            }
            Err(e) => {
                prop_assert!(!within, "{}", e);
                prop_assert_eq!(e.code(), "ERR_IMAGE_TOO_LARGE", "{}", e);
            }
        }
    }

    /// Headers claiming dimensions beyond the limits: refused, whatever the data behind them.
    #[test]
    fn declared_sizes_beyond_the_limits_are_refused(
        seed in seed(),
        extra in 1u32..=1 << 16,
        wide in any::<bool>(),
    ) {
        let limits = ImageLimits {
            max_width: 32,
            max_height: 32,
            max_pixels: 32 * 32,
            max_file_bytes: 1 << 20,
        };
        let (w, h) = if wide { (32 + extra, 1) } else { (1, 32 + extra) };
        let mut bytes = seed.encode();
        apply(&mut bytes, seed.format, &Mutation::Declare(w, h));
        let source = ImageSource::Bytes { name: NAME.into(), bytes: bytes.into() };
        let result = load_image(&source, &limits);
        assert_no_huge_allocation("declared size");
        match result {
            // The rewrite can miss (a GIF's sizes are 16 bits, a WebP's 14): then the image
            // is what it is, and within the limits.
            Ok(img) => prop_assert!(img.width <= 32 && img.height <= 32),
            Err(e) => prop_assert!(
                matches!(e.code(), "ERR_IMAGE_TOO_LARGE" | "ERR_IMAGE_DECODE" | "ERR_UNSUPPORTED_FORMAT"),
                "{}: {e}", e.code()
            ),
        }
    }

    /// PNG's IHDR is checked before the decoder runs: a claim beyond the limits is
    /// ERR_IMAGE_TOO_LARGE from the header alone.
    #[test]
    fn png_header_claims_are_too_large(
        w in 1u32..=u32::MAX,
        h in 1u32..=u32::MAX,
        cut in 33usize..=128,
        salt in any::<u32>(),
    ) {
        prop_assume!(w > 4096 || h > 4096 || u64::from(w) * u64::from(h) > 1 << 22);
        let seed = Seed { format: ImageFormat::Png, width: 8, height: 8, layout: 2, salt };
        let mut bytes = seed.encode();
        declare(&mut bytes, ImageFormat::Png, w, h);
        bytes.truncate(cut);
        let limits = ImageLimits {
            max_width: 4096,
            max_height: 4096,
            max_pixels: 1 << 22,
            max_file_bytes: 1 << 20,
        };
        let source = ImageSource::Bytes { name: NAME.into(), bytes: bytes.into() };
        let e = load_image(&source, &limits).err();
        prop_assert_eq!(e.as_ref().map(|e| e.code()), Some("ERR_IMAGE_TOO_LARGE"), "{:?}", e);
        assert_no_huge_allocation("png header");
    }

    /// Random bytes, bare or behind a real signature.
    #[test]
    fn random_bytes_fail_cleanly(
        prefix in prop::sample::select(vec![
            &b""[..], b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"RIFF\0\0\0\0WEBPVP8L", b"BM",
            b"II*\0", b"MM\0*", b"GIF89a", b"GIF87a",
        ]),
        body in prop::collection::vec(any::<u8>(), 0..512),
        limits in limits(),
    ) {
        let mut bytes = prefix.to_vec();
        bytes.extend_from_slice(&body);
        let seed = Seed { format: ImageFormat::Png, width: 16, height: 16, layout: 0, salt: 0 };
        check_decode(bytes, &limits.limits(&seed))?;
    }
}

proptest! {
    // Each case decodes every prefix of one image: a few hundred decodes.
    #![proptest_config(crate::config(12))]

    /// Every prefix of a valid image (truncation at every point, one format per case).
    #[test]
    fn every_truncation_fails_cleanly(seed in seed()) {
        let bytes = seed.encode();
        let limits = ImageLimits::default();
        for cut in 0..bytes.len() {
            check_decode(bytes[..cut].to_vec(), &limits)?;
        }
    }
}
