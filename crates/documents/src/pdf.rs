//! PDF rendering: a minimal typst `World` holding the template, the document's data as JSON
//! and its Factur-X XML; typst lays it out as PDF/A-3b with the XML attached; a post-step adds
//! the Factur-X extension schema to the XMP metadata (typst writes the PDF/A part only).

use crate::{cii_xml, decimal, percent, quantity, Document, Error};
use std::collections::HashMap;
use std::sync::OnceLock;
use typst::diag::{FileError, FileResult};
use typst::foundations::{Bytes, Datetime, Duration};
use typst::syntax::{FileId, RootedPath, Source, VirtualPath, VirtualRoot};
use typst::text::{Font, FontBook};
use typst::utils::LazyHash;
use typst::{Library, LibraryExt, World};

const TEMPLATE: &str = include_str!("../templates/invoice.typ");

fn fonts() -> &'static (Vec<Font>, LazyHash<FontBook>) {
    static F: OnceLock<(Vec<Font>, LazyHash<FontBook>)> = OnceLock::new();
    F.get_or_init(|| {
        let fonts: Vec<Font> = typst_assets::fonts()
            .flat_map(|data| Font::iter(Bytes::new(data)))
            .collect();
        let book = FontBook::from_fonts(&fonts);
        (fonts, LazyHash::new(book))
    })
}

fn library() -> &'static LazyHash<Library> {
    static L: OnceLock<LazyHash<Library>> = OnceLock::new();
    L.get_or_init(|| LazyHash::new(Library::default()))
}

fn file_id(path: &str) -> FileId {
    RootedPath::new(
        VirtualRoot::Project,
        VirtualPath::new(path).expect("valid virtual path"),
    )
    .intern()
}

struct InvoiceWorld {
    main: Source,
    files: HashMap<FileId, Bytes>,
    today: (i32, u8, u8),
}

impl World for InvoiceWorld {
    fn library(&self) -> &LazyHash<Library> {
        library()
    }
    fn book(&self) -> &LazyHash<FontBook> {
        &fonts().1
    }
    fn main(&self) -> FileId {
        self.main.id()
    }
    fn source(&self, id: FileId) -> FileResult<Source> {
        if id == self.main.id() {
            Ok(self.main.clone())
        } else {
            Err(FileError::NotFound(std::path::PathBuf::from(
                "not a source",
            )))
        }
    }
    fn file(&self, id: FileId) -> FileResult<Bytes> {
        self.files
            .get(&id)
            .cloned()
            .ok_or_else(|| FileError::NotFound(std::path::PathBuf::from("not provided")))
    }
    fn font(&self, index: usize) -> Option<Font> {
        fonts().0.get(index).cloned()
    }
    fn today(&self, _offset: Option<Duration>) -> Option<Datetime> {
        Datetime::from_ymd(self.today.0, self.today.1, self.today.2)
    }
}

/// `1 234,56 €` (French number format).
fn euros(cents: i64) -> String {
    let d = decimal(cents);
    let (int, frac) = d.split_once('.').unwrap_or((&d, "00"));
    let (sign, digits) = int.strip_prefix('-').map(|s| ("-", s)).unwrap_or(("", int));
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push('\u{202f}');
        }
        grouped.push(c);
    }
    format!("{sign}{grouped},{frac}\u{a0}€")
}

fn fr_date(iso: &str) -> String {
    let p: Vec<&str> = iso.split('-').collect();
    match p.as_slice() {
        [y, m, d] => format!("{d}/{m}/{y}"),
        _ => iso.to_string(),
    }
}

/// The data the template reads, with every amount already formatted.
fn template_data(d: &Document) -> serde_json::Value {
    serde_json::json!({
        "doc": d,
        "title": if d.kind == "credit_note" { "Avoir" } else { "Facture" },
        "issue_date": fr_date(&d.issue_date),
        "due_date": d.due_date.as_deref().map(fr_date),
        "lines": d.lines.iter().map(|l| serde_json::json!({
            "description": l.description,
            "period": format!("{} – {}", fr_date(&l.period_start), fr_date(&l.period_end)),
            "quantity": quantity(l.quantity_milli).replace('.', ","),
            "unit_price": euros(l.unit_price),
            "vat": format!("{} %", percent(l.vat_rate_bp).replace('.', ",")),
            "amount": euros(l.amount),
        })).collect::<Vec<_>>(),
        "vat": d.vat.iter().map(|v| serde_json::json!({
            "rate": format!("{} %", percent(v.rate_bp).replace('.', ",")),
            "base": euros(v.base),
            "vat": euros(v.vat),
        })).collect::<Vec<_>>(),
        "total_excl": euros(d.total_excl),
        "total_vat": euros(d.total_vat),
        "total_incl": euros(d.total_incl),
    })
}

/// Renders a document as a Factur-X PDF/A-3b: the printable invoice with its CII XML attached.
pub fn render(d: &Document) -> Result<Vec<u8>, Error> {
    let main = Source::new(file_id("/invoice.typ"), TEMPLATE.to_string());
    let data = serde_json::to_vec(&template_data(d)).map_err(|e| Error::Typst(e.to_string()))?;
    let xml = cii_xml(d);
    let mut files = HashMap::new();
    files.insert(file_id("/data.json"), Bytes::new(data));
    files.insert(file_id("/factur-x.xml"), Bytes::new(xml.into_bytes()));
    let today = {
        let p: Vec<i64> = d
            .issue_date
            .split('-')
            .filter_map(|s| s.parse().ok())
            .collect();
        (
            p.first().copied().unwrap_or(2026) as i32,
            p.get(1).copied().unwrap_or(1) as u8,
            p.get(2).copied().unwrap_or(1) as u8,
        )
    };
    let world = InvoiceWorld { main, files, today };
    let document: typst_layout::PagedDocument = typst::compile(&world).output.map_err(|errs| {
        Error::Typst(
            errs.iter()
                .map(|e| e.message.to_string())
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    let standards = typst_pdf::PdfStandards::new(&[typst_pdf::PdfStandard::A_3b])
        .map_err(|e| Error::Typst(format!("{e:?}")))?;
    let options = typst_pdf::PdfOptions {
        ident: typst::foundations::Smart::Custom(d.number.clone()),
        timestamp: Some(typst_pdf::Timestamp::new_utc(
            Datetime::from_ymd_hms(today.0, today.1, today.2, 0, 0, 0).expect("valid date"),
        )),
        standards,
        ..Default::default()
    };
    let pdf = typst_pdf::pdf(&document, &options).map_err(|errs| {
        Error::Typst(
            errs.iter()
                .map(|e| e.message.to_string())
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    add_facturx_xmp(
        &pdf,
        if d.kind == "credit_note" {
            "CREDIT_NOTE"
        } else {
            "INVOICE"
        },
    )
}

const FX_NS: &str = "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#";

fn facturx_xmp(doc_type: &str) -> String {
    let prop = |name: &str, desc: &str| {
        format!(
            "<rdf:li rdf:parseType=\"Resource\"><pdfaProperty:name>{name}</pdfaProperty:name><pdfaProperty:valueType>Text</pdfaProperty:valueType>\
             <pdfaProperty:category>external</pdfaProperty:category><pdfaProperty:description>{desc}</pdfaProperty:description></rdf:li>"
        )
    };
    format!(
        "<rdf:Description rdf:about=\"\" xmlns:fx=\"{FX_NS}\"><fx:DocumentType>{doc_type}</fx:DocumentType>\
         <fx:DocumentFileName>factur-x.xml</fx:DocumentFileName><fx:Version>1.0</fx:Version><fx:ConformanceLevel>EN 16931</fx:ConformanceLevel></rdf:Description>\
         <rdf:Description rdf:about=\"\" xmlns:pdfaExtension=\"http://www.aiim.org/pdfa/ns/extension/\" xmlns:pdfaSchema=\"http://www.aiim.org/pdfa/ns/schema#\" xmlns:pdfaProperty=\"http://www.aiim.org/pdfa/ns/property#\">\
         <pdfaExtension:schemas><rdf:Bag><rdf:li rdf:parseType=\"Resource\"><pdfaSchema:schema>Factur-X PDFA Extension Schema</pdfaSchema:schema>\
         <pdfaSchema:namespaceURI>{FX_NS}</pdfaSchema:namespaceURI><pdfaSchema:prefix>fx</pdfaSchema:prefix><pdfaSchema:property><rdf:Seq>{}{}{}{}</rdf:Seq></pdfaSchema:property>\
         </rdf:li></rdf:Bag></pdfaExtension:schemas></rdf:Description>",
        prop("DocumentFileName", "The name of the embedded XML document"),
        prop("DocumentType", "The type of the hybrid document in capital letters, e.g. INVOICE or ORDER"),
        prop("Version", "The actual version of the standard applying to the embedded XML document"),
        prop("ConformanceLevel", "The conformance level of the embedded XML document"),
    )
}

/// Adds the Factur-X extension schema to the document's XMP metadata stream.
fn add_facturx_xmp(pdf: &[u8], doc_type: &str) -> Result<Vec<u8>, Error> {
    let err = |e: &dyn std::fmt::Display| Error::Pdf(e.to_string());
    let mut doc = lopdf::Document::load_mem(pdf).map_err(|e| err(&e))?;
    let root = doc
        .trailer
        .get(b"Root")
        .and_then(|r| r.as_reference())
        .map_err(|e| err(&e))?;
    let meta = doc
        .get_dictionary(root)
        .and_then(|c| c.get(b"Metadata"))
        .and_then(|m| m.as_reference())
        .map_err(|e| err(&e))?;
    let stream = doc
        .get_object_mut(meta)
        .and_then(|o| o.as_stream_mut())
        .map_err(|e| err(&e))?;
    let content = stream
        .decompressed_content()
        .unwrap_or_else(|_| stream.content.clone());
    let xmp = String::from_utf8(content).map_err(|e| err(&e))?;
    let Some(at) = xmp.rfind("</rdf:RDF>") else {
        return Err(Error::Pdf("the XMP metadata has no rdf:RDF element".into()));
    };
    let patched = format!("{}{}{}", &xmp[..at], facturx_xmp(doc_type), &xmp[at..]);
    stream.set_plain_content(patched.into_bytes());
    let mut out = Vec::with_capacity(pdf.len() + 4096);
    doc.save_to(&mut out).map_err(|e| err(&e))?;
    Ok(out)
}
