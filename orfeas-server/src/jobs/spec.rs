//! [`JobSpec`]: everything needed to run a job again after a crash — its input file and the
//! full settings it was submitted with, as they were resolved at upload (server defaults
//! included), so a restarted server with other flags still runs what the client asked for.
//!
//! Stored as names and numbers (not core types) so the journal stays readable and a record
//! written by this version parses in later ones; unknown names fail the job, not the start.

use orfeas_core::{Background, GenerateSettings, MeshFormat, Method, Quality};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    /// File name of the stored upload inside `<data>/jobs/<id>/input/`.
    pub input: String,
    /// Base name of the outputs (`cat` → `cat.stl`).
    pub stem: String,
    /// Jobs of this job's batch allowed to run at once.
    pub batch_size: usize,
    pub settings: SettingsSpec,
}

/// [`GenerateSettings`] by name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SettingsSpec {
    pub formats: Vec<String>,
    pub quality: String,
    pub method: String,
    pub background: String,
    pub max_error: Option<f32>,
    pub max_triangles: Option<usize>,
    pub width_mm: f32,
    pub depth_mm: f32,
    pub base_mm: f32,
    pub solid: bool,
    pub resolution: Option<usize>,
    pub keep_largest: bool,
}

impl SettingsSpec {
    /// `method` is the batch's method (the settings' own, or the server's default).
    pub fn new(settings: &GenerateSettings, method: Method) -> Self {
        Self {
            formats: settings
                .formats
                .iter()
                .map(|f| f.as_str().to_owned())
                .collect(),
            quality: settings.quality.as_str().to_owned(),
            method: method.as_str().to_owned(),
            background: settings.background.as_str().to_owned(),
            max_error: settings.max_error,
            max_triangles: settings.max_triangles,
            width_mm: settings.width_mm,
            depth_mm: settings.depth_mm,
            base_mm: settings.base_mm,
            solid: settings.solid,
            resolution: settings.resolution,
            keep_largest: settings.keep_largest,
        }
    }

    /// The settings back, validated as an upload's are.
    pub fn settings(&self) -> Result<GenerateSettings, orfeas_core::OrfeasError> {
        let formats = self
            .formats
            .iter()
            .map(|f| f.parse::<MeshFormat>())
            .collect::<Result<Vec<_>, _>>()?;
        let settings = GenerateSettings {
            formats,
            quality: self.quality.parse::<Quality>()?,
            max_error: self.max_error,
            max_triangles: self.max_triangles,
            width_mm: self.width_mm,
            depth_mm: self.depth_mm,
            base_mm: self.base_mm,
            solid: self.solid,
            method: Some(self.method.parse::<Method>()?),
            resolution: self.resolution,
            keep_largest: self.keep_largest,
            background: self.background.parse::<Background>()?,
        };
        settings.validate()?;
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_survive_the_round_trip_through_json() {
        let settings = GenerateSettings {
            formats: vec![MeshFormat::Stl, MeshFormat::Glb, MeshFormat::MaskPng],
            quality: Quality::High,
            max_error: Some(0.01),
            max_triangles: Some(5000),
            width_mm: 80.0,
            depth_mm: 12.5,
            base_mm: 1.0,
            solid: false,
            method: Some(Method::Relief),
            resolution: None,
            keep_largest: true,
            background: Background::Border,
        };
        let spec = SettingsSpec::new(&settings, Method::Relief);
        let json = serde_json::to_string(&spec).expect("json");
        let back: SettingsSpec = serde_json::from_str(&json).expect("parse");
        assert_eq!(back.settings().expect("valid"), settings);
    }

    #[test]
    fn an_unknown_name_is_an_error_not_a_default() {
        let mut spec = SettingsSpec::new(&GenerateSettings::default(), Method::Auto);
        spec.formats.push("dwg".into());
        assert!(spec.settings().is_err());
    }
}
