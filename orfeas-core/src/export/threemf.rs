//! 3MF (3D Manufacturing Format): an OPC zip package holding one mesh object in millimetres.
//!
//! Slicers prefer it to STL because it is indexed (shared vertices, so watertightness is
//! explicit rather than reconstructed by matching floats) and carries its unit.

use std::fmt::Write as _;
use std::io::{Cursor, Write};

use zip::write::SimpleFileOptions;

use super::GENERATOR;
use crate::mesh::Mesh;

const CONTENT_TYPES: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">
 <Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>
 <Default Extension="model" ContentType="application/vnd.ms-package.3dmanufacturing-3dmodel+xml"/>
</Types>
"#;

const RELS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
 <Relationship Target="/3D/3dmodel.model" Id="rel0" Type="http://schemas.microsoft.com/3dmanufacturing/2013/01/3dmodel"/>
</Relationships>
"#;

/// The whole package in memory (zip needs to seek back to write its directory).
pub(super) fn encode(mesh: &Mesh) -> Result<Vec<u8>, String> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let deflate = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let mut add = |name: &str, body: &[u8]| -> Result<(), String> {
        zip.start_file(name, deflate).map_err(|e| e.to_string())?;
        zip.write_all(body).map_err(|e| e.to_string())
    };
    add("[Content_Types].xml", CONTENT_TYPES.as_bytes())?;
    add("_rels/.rels", RELS.as_bytes())?;
    add("3D/3dmodel.model", model_xml(mesh).as_bytes())?;
    zip.finish()
        .map(Cursor::into_inner)
        .map_err(|e| e.to_string())
}

fn model_xml(mesh: &Mesh) -> String {
    let mut xml = String::with_capacity(64 + mesh.positions.len() * 48 + mesh.triangles.len() * 44);
    xml.push_str(concat!(
        r#"<?xml version="1.0" encoding="UTF-8"?>"#,
        "\n",
        r#"<model unit="millimeter" xml:lang="en-US" xmlns="http://schemas.microsoft.com/3dmanufacturing/core/2015/02">"#,
        "\n"
    ));
    let _ = writeln!(
        xml,
        r#" <metadata name="Application">{GENERATOR}</metadata>"#
    );
    xml.push_str(" <resources>\n  <object id=\"1\" type=\"model\">\n   <mesh>\n    <vertices>\n");
    for [x, y, z] in &mesh.positions {
        let _ = writeln!(xml, r#"     <vertex x="{x}" y="{y}" z="{z}"/>"#);
    }
    xml.push_str("    </vertices>\n    <triangles>\n");
    for [a, b, c] in &mesh.triangles {
        let _ = writeln!(xml, r#"     <triangle v1="{a}" v2="{b}" v3="{c}"/>"#);
    }
    xml.push_str("    </triangles>\n   </mesh>\n  </object>\n </resources>\n <build>\n  <item objectid=\"1\"/>\n </build>\n</model>\n");
    xml
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn package_holds_the_mesh_and_its_relationships() {
        let mesh = Mesh {
            positions: vec![
                [0.0, 0.0, 0.0],
                [1.5, 0.0, 0.0],
                [0.0, 2.0, 0.0],
                [0.0, 0.0, 3.0],
            ],
            triangles: vec![[0, 2, 1], [0, 1, 3], [1, 2, 3], [0, 3, 2]],
            ..Default::default()
        };
        let bytes = encode(&mesh).expect("encode");
        let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).expect("a zip");
        let mut model = String::new();
        archive
            .by_name("3D/3dmodel.model")
            .expect("model part")
            .read_to_string(&mut model)
            .expect("utf8");
        assert!(model.contains(r#"unit="millimeter""#));
        assert_eq!(model.matches("<vertex ").count(), 4);
        assert_eq!(model.matches("<triangle ").count(), 4);
        assert!(model.contains(r#"<vertex x="1.5" y="0" z="0"/>"#));
        assert!(model.contains(r#"<triangle v1="0" v2="2" v3="1"/>"#));
        let mut rels = String::new();
        archive
            .by_name("_rels/.rels")
            .expect("rels")
            .read_to_string(&mut rels)
            .expect("utf8");
        assert!(rels.contains("/3D/3dmodel.model"));
        assert!(archive.by_name("[Content_Types].xml").is_ok());
    }
}
