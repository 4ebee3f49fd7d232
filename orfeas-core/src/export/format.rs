//! [`MeshFormat`]: the output formats, their names (`--format`, serde) and file extensions.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{OrfeasError, Result};

/// An output format (`--format`).
///
/// Serialised (serde, JSON) and printed under its [`as_str`](Self::as_str) name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MeshFormat {
    /// Binary STL (the default for printing).
    #[serde(rename = "stl")]
    Stl,
    /// ASCII STL.
    #[serde(rename = "stl-ascii")]
    StlAscii,
    /// Wavefront OBJ, with `.mtl` and texture `.png` when a texture is given.
    #[serde(rename = "obj")]
    Obj,
    /// glTF 2.0 binary (+Y up, metres).
    #[serde(rename = "glb")]
    Glb,
    /// Binary little-endian PLY with vertex colours.
    #[serde(rename = "ply")]
    Ply,
    /// 3D Manufacturing Format: a zip holding the mesh in millimetres, read by every slicer.
    #[serde(rename = "3mf")]
    ThreeMf,
    /// The height map as a normalised 16-bit grayscale PNG.
    #[serde(rename = "depth16")]
    Depth16,
    /// The raw height map as a NumPy `.npy` float32 array.
    #[serde(rename = "depth.npy")]
    DepthNpy,
    /// A full 3D object's density field as a NumPy `.npy` float32 `[R, R, R]` array.
    #[serde(rename = "field.npy")]
    FieldNpy,
    /// The foreground mask as an 8-bit gray PNG at the image's size (255 = subject).
    #[serde(rename = "mask.png")]
    MaskPng,
    /// The foreground probability as a NumPy `.npy` float32 `[1024, 1024]` array: BiRefNet's at
    /// its input when it made the mask, else the mask's alpha / 255 resized to that size.
    #[serde(rename = "mask.npy")]
    MaskNpy,
}

impl MeshFormat {
    /// Every format, in the order they are listed to users.
    pub const ALL: [MeshFormat; 11] = [
        Self::Stl,
        Self::StlAscii,
        Self::Obj,
        Self::Glb,
        Self::Ply,
        Self::ThreeMf,
        Self::Depth16,
        Self::DepthNpy,
        Self::FieldNpy,
        Self::MaskPng,
        Self::MaskNpy,
    ];

    /// The name accepted by [`FromStr`] and used in results (`stl`, `stl-ascii`, ..., `depth.npy`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stl => "stl",
            Self::StlAscii => "stl-ascii",
            Self::Obj => "obj",
            Self::Glb => "glb",
            Self::Ply => "ply",
            Self::ThreeMf => "3mf",
            Self::Depth16 => "depth16",
            Self::DepthNpy => "depth.npy",
            Self::FieldNpy => "field.npy",
            Self::MaskPng => "mask.png",
            Self::MaskNpy => "mask.npy",
        }
    }

    /// File extension of the main file, without the dot (`depth16.png`, `depth.npy` are double).
    pub fn extension(self) -> &'static str {
        match self {
            Self::Stl | Self::StlAscii => "stl",
            Self::Obj => "obj",
            Self::Glb => "glb",
            Self::Ply => "ply",
            Self::ThreeMf => "3mf",
            Self::Depth16 => "depth16.png",
            Self::DepthNpy => "depth.npy",
            Self::FieldNpy => "field.npy",
            Self::MaskPng => "mask.png",
            Self::MaskNpy => "mask.npy",
        }
    }

    /// MIME type of the main file, for downloads.
    pub fn mime_type(self) -> &'static str {
        match self {
            Self::Stl | Self::StlAscii => "model/stl",
            Self::Obj => "model/obj",
            Self::Glb => "model/gltf-binary",
            Self::Ply => "application/x-ply",
            Self::ThreeMf => "model/3mf",
            Self::Depth16 | Self::MaskPng => "image/png",
            Self::DepthNpy | Self::FieldNpy | Self::MaskNpy => "application/x-npy",
        }
    }

    /// Whether the format is written from the mesh (`false`: from the height map, the
    /// density field or the mask).
    pub fn needs_mesh(self) -> bool {
        !self.is_depth() && !self.is_field() && !self.is_mask()
    }

    /// Whether the format is the foreground mask (`mask.png`, `mask.npy`): any method makes
    /// one, and a job asking for nothing else only runs the masking stage.
    pub fn is_mask(self) -> bool {
        matches!(self, Self::MaskPng | Self::MaskNpy)
    }

    /// Whether the format is a relief's depth map (`depth16`, `depth.npy`).
    pub fn is_depth(self) -> bool {
        matches!(self, Self::Depth16 | Self::DepthNpy)
    }

    /// Whether the format is an object's density field (`field.npy`).
    pub fn is_field(self) -> bool {
        self == Self::FieldNpy
    }

    /// Parses a comma-separated list (`"stl,glb"`), ignoring blanks and repeated entries.
    ///
    /// Errors with `ERR_INVALID_INPUT` naming the unknown entry and listing the valid names,
    /// or when the list names no format at all.
    pub fn parse_list(list: &str) -> Result<Vec<MeshFormat>> {
        let mut out = Vec::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let format: MeshFormat = item.parse()?;
            if !out.contains(&format) {
                out.push(format);
            }
        }
        if out.is_empty() {
            return Err(OrfeasError::InvalidInput(format!(
                "no output format given; expected one or more of {}",
                Self::valid_names()
            )));
        }
        Ok(out)
    }

    /// `stl, stl-ascii, obj, glb, ply, 3mf, depth16, depth.npy, field.npy, mask.png,
    /// mask.npy`, for messages.
    fn valid_names() -> String {
        Self::ALL.map(Self::as_str).join(", ")
    }
}

impl FromStr for MeshFormat {
    type Err = OrfeasError;

    /// Case-insensitive; `_` may stand for `-`, a leading dot and the full extensions
    /// (`depth16.png`) are accepted, and `npy` is short for `depth.npy`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim().to_ascii_lowercase().replace('_', "-");
        match name.strip_prefix('.').unwrap_or(&name) {
            "stl" => Ok(Self::Stl),
            "stl-ascii" | "stlascii" => Ok(Self::StlAscii),
            "obj" => Ok(Self::Obj),
            "glb" => Ok(Self::Glb),
            "ply" => Ok(Self::Ply),
            "3mf" => Ok(Self::ThreeMf),
            "depth16" | "depth16.png" => Ok(Self::Depth16),
            "depth.npy" | "npy" => Ok(Self::DepthNpy),
            "field.npy" => Ok(Self::FieldNpy),
            "mask.png" | "mask" => Ok(Self::MaskPng),
            "mask.npy" => Ok(Self::MaskNpy),
            _ => Err(OrfeasError::InvalidInput(format!(
                "unknown output format {:?}; expected one of {}",
                s.trim(),
                Self::valid_names()
            ))),
        }
    }
}

impl fmt::Display for MeshFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for f in MeshFormat::ALL {
            assert_eq!(f.as_str().parse::<MeshFormat>().ok(), Some(f));
            assert_eq!(f.to_string(), f.as_str());
            let json = serde_json::to_string(&f).ok();
            assert_eq!(json, Some(format!("\"{}\"", f.as_str())));
        }
        assert_eq!("NPY".parse::<MeshFormat>().ok(), Some(MeshFormat::DepthNpy));
        assert_eq!(
            " STL_ascii ".parse::<MeshFormat>().ok(),
            Some(MeshFormat::StlAscii)
        );
        assert_eq!(MeshFormat::Depth16.extension(), "depth16.png");
        assert_eq!(
            "Field.NPY".parse::<MeshFormat>().ok(),
            Some(MeshFormat::FieldNpy)
        );
        assert!(!MeshFormat::FieldNpy.needs_mesh() && MeshFormat::FieldNpy.is_field());
    }

    #[test]
    fn parse_list_reports_unknown_format() {
        assert_eq!(
            MeshFormat::parse_list("stl, GLB,stl,").ok(),
            Some(vec![MeshFormat::Stl, MeshFormat::Glb])
        );
        let Err(e) = MeshFormat::parse_list("stl,fbx") else {
            panic!("fbx accepted")
        };
        assert_eq!(e.code(), "ERR_INVALID_INPUT");
        let msg = e.to_string();
        assert!(
            msg.contains("\"fbx\"") && msg.contains("stl-ascii") && msg.contains("depth.npy"),
            "{msg}"
        );
        assert!(MeshFormat::parse_list(" , ").is_err());
    }
}
