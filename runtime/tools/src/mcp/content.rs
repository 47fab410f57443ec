//! MCP content blocks as text for a model.

use rmcp::model::{ContentBlock, ResourceContents};

/// The text of `block`; content that is not text (an image, audio, a binary resource) is
/// summarised in brackets, since a model reads only text here.
pub(crate) fn content_text(block: &ContentBlock) -> String {
    match block {
        ContentBlock::Text(text) => text.text.clone(),
        ContentBlock::Image(image) => format!("[image: {}, {} base64 characters]", image.mime_type, image.data.len()),
        ContentBlock::Audio(audio) => format!("[audio: {}, {} base64 characters]", audio.mime_type, audio.data.len()),
        ContentBlock::Resource(embedded) => match &embedded.resource {
            ResourceContents::TextResourceContents { uri, text, .. } => format!("[resource: {uri}]\n{text}"),
            ResourceContents::BlobResourceContents { uri, mime_type, blob, .. } => format!(
                "[resource: {uri}, {}, {} base64 characters]",
                mime_type.as_deref().unwrap_or("binary"),
                blob.len()
            ),
            _ => "[resource]".to_owned(),
        },
        ContentBlock::ResourceLink(link) => format!("[resource link: {} ({})]", link.uri, link.name),
        other => format!("[{} content]", content_kind(other)),
    }
}

/// The `type` of a block the match above does not know, from its wire form.
fn content_kind(block: &ContentBlock) -> String {
    serde_json::to_value(block)
        .ok()
        .and_then(|value| value.get("type").and_then(|kind| kind.as_str()).map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The text of all `blocks`, one after the other.
pub(crate) fn contents_text(blocks: &[ContentBlock]) -> String {
    blocks.iter().map(content_text).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use rmcp::model::{ImageContent, TextContent};

    use super::*;

    #[test]
    fn text_is_kept_and_images_are_summarised() {
        let blocks = [
            ContentBlock::Text(TextContent::new("first")),
            ContentBlock::Image(ImageContent::new("aGVsbG8=", "image/png")),
            ContentBlock::Text(TextContent::new("last")),
        ];
        assert_eq!(contents_text(&blocks), "first\n[image: image/png, 8 base64 characters]\nlast");
    }
}
