//! The session PDF: one page per JPEG, each embedded byte for byte (DCTDecode), sized from its
//! pixels and the dpi. Evidence is never re-encoded.

use pdf_writer::{Content, Filter, Finish, Name, Pdf, Rect, Ref};

use super::error::ImagingError;
use super::jpeg::frame_info;

/// A PDF of `pages` at `dpi`. Pages whose JPEG frame header cannot be read are left out; use
/// [`try_pdf`] to be told instead.
pub fn pdf(pages: &[&[u8]], dpi: u32) -> Vec<u8> {
    let good: Vec<&[u8]> = pages
        .iter()
        .copied()
        .filter(|p| readable(p).is_some())
        .collect();
    build(&good, dpi)
}

/// Like [`pdf`], but a page that is not a readable JPEG is an error naming it (0-based).
pub fn try_pdf(pages: &[&[u8]], dpi: u32) -> Result<Vec<u8>, ImagingError> {
    for (i, p) in pages.iter().enumerate() {
        if readable(p).is_none() {
            return Err(ImagingError::Decode {
                format: "JPEG",
                reason: format!("page {i} has no readable JPEG frame header"),
            });
        }
    }
    Ok(build(pages, dpi))
}

fn readable(jpeg: &[u8]) -> Option<(u16, u16, u8)> {
    frame_info(jpeg).filter(|&(w, h, c)| w > 0 && h > 0 && matches!(c, 1 | 3 | 4))
}

fn build(pages: &[&[u8]], dpi: u32) -> Vec<u8> {
    let dpi = dpi.max(1) as f32;
    let mut pdf = Pdf::new();
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let ids = |i: usize| {
        let base = 3 + 3 * i as i32;
        (Ref::new(base), Ref::new(base + 1), Ref::new(base + 2))
    };
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree)
        .kids((0..pages.len()).map(|i| ids(i).0))
        .count(pages.len() as i32);
    let name = Name(b"Im0");
    for (i, jpeg) in pages.iter().enumerate() {
        let Some((w, h, comps)) = readable(jpeg) else {
            continue;
        };
        let (page_id, image_id, content_id) = ids(i);
        let (pw, ph) = (f32::from(w) / dpi * 72.0, f32::from(h) / dpi * 72.0);
        let mut page = pdf.page(page_id);
        page.media_box(Rect::new(0.0, 0.0, pw, ph));
        page.parent(tree);
        page.contents(content_id);
        page.resources().x_objects().pair(name, image_id);
        page.finish();
        let mut image = pdf.image_xobject(image_id, jpeg);
        image.filter(Filter::DctDecode);
        image.width(i32::from(w));
        image.height(i32::from(h));
        match comps {
            1 => image.color_space().device_gray(),
            3 => image.color_space().device_rgb(),
            _ => image.color_space().device_cmyk(),
        }
        image.bits_per_component(8);
        image.finish();
        let mut content = Content::new();
        content.save_state();
        content.transform([pw, 0.0, 0.0, ph, 0.0, 0.0]);
        content.x_object(name);
        content.restore_state();
        pdf.stream(content_id, &content.finish());
    }
    pdf.finish()
}
