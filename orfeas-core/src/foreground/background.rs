//! [`Background`]: how the masking stage separates the subject from its background
//! (`--background`, `background=`, the HTTP `background` field).

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::error::OrfeasError;

/// Where the foreground mask comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Background {
    /// The alpha channel when it is real (neither empty nor almost opaque), else BiRefNet when
    /// its weights are loaded, else the border estimate. The result says which one ran.
    #[default]
    Auto,
    /// The image's alpha channel, as it is.
    Alpha,
    /// The backdrop estimated from the image border (flood fill from a near-uniform border).
    Border,
    /// The learned remover (BiRefNet), whatever the image's alpha says.
    Birefnet,
    /// No mask: the whole image is the subject.
    None,
}

impl Background {
    /// Every value, in the order they are listed to users.
    pub const ALL: [Background; 5] = [
        Self::Auto,
        Self::Alpha,
        Self::Border,
        Self::Birefnet,
        Self::None,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Alpha => "alpha",
            Self::Border => "border",
            Self::Birefnet => "birefnet",
            Self::None => "none",
        }
    }
}

impl FromStr for Background {
    type Err = OrfeasError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim().to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|b| b.as_str() == name)
            .ok_or_else(|| {
                OrfeasError::InvalidInput(format!(
                    "unknown background {:?}; expected auto, alpha, border, birefnet or none",
                    s.trim()
                ))
            })
    }
}

impl fmt::Display for Background {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_print_and_serialise_alike() {
        for b in Background::ALL {
            assert_eq!(b.as_str().parse::<Background>().ok(), Some(b));
            assert_eq!(
                serde_json::to_string(&b).ok(),
                Some(format!("\"{}\"", b.as_str()))
            );
        }
        assert_eq!(
            " BiRefNet ".parse::<Background>().ok(),
            Some(Background::Birefnet)
        );
        let err = "rembg".parse::<Background>().err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("rembg") && e.contains("birefnet")));
    }
}
