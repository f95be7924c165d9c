//! What a prompt carries: its text, and images after it. The text is what the transcript, the
//! status, the live events and the thread show (attached images appear in it by name, as
//! `[image: shot.png]` lines the chat layer writes); the images go only to the CLI.

use crate::claude::{image_block, ImageMediaType, UserInput};

/// The text from `words_at` on (all of it if that is not a place in it).
pub(crate) fn words_of(text: &str, words_at: usize) -> &str {
    text.get(words_at..).unwrap_or(text)
}

/// An image of a prompt, its bytes as base64.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptImage {
    pub media_type: ImageMediaType,
    pub base64: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct PromptContent {
    pub text: String,
    pub images: Vec<PromptImage>,
    /// Where the person's own words start in `text`: the blocks before them (attached files,
    /// context) were put there by the plugin. Known by length, never found by looking for tags
    /// in the text, which the person (or a file) could have typed.
    pub words_at: usize,
}

impl<S: AsRef<str> + ?Sized> From<&S> for PromptContent {
    fn from(text: &S) -> Self {
        PromptContent {
            text: text.as_ref().to_owned(),
            images: Vec::new(),
            words_at: 0,
        }
    }
}

impl From<String> for PromptContent {
    fn from(text: String) -> Self {
        PromptContent {
            text,
            images: Vec::new(),
            words_at: 0,
        }
    }
}

impl PromptContent {
    /// The plugin's `blocks` before the text, each followed by a blank line.
    pub(crate) fn after_blocks(self, blocks: &[String]) -> PromptContent {
        if blocks.is_empty() {
            return self;
        }
        let mut text = blocks.join("\n\n");
        if !self.text.is_empty() {
            text.push_str("\n\n");
        }
        let words_at = text.len() + self.words_at;
        text.push_str(&self.text);
        PromptContent {
            text,
            words_at,
            ..self
        }
    }

    /// The person's own words (and what follows them): the text after the plugin's blocks.
    pub(crate) fn words(&self) -> &str {
        words_of(&self.text, self.words_at)
    }

    /// The base64 bytes of its images: what a queued prompt holds in memory beyond its text.
    pub(crate) fn image_bytes(&self) -> usize {
        self.images.iter().map(|i| i.base64.len()).sum()
    }

    /// The user line's content: plain text, or a text block (never empty: the Messages API
    /// refuses an empty one) followed by the image blocks.
    pub(crate) fn into_input(self) -> UserInput {
        if self.images.is_empty() {
            return UserInput::Text(self.text);
        }
        let mut blocks = Vec::with_capacity(self.images.len() + 1);
        if !self.text.trim().is_empty() {
            blocks.push(serde_json::json!({"type": "text", "text": self.text}));
        }
        blocks.extend(
            self.images
                .iter()
                .map(|i| image_block(i.media_type, &i.base64)),
        );
        UserInput::Blocks(blocks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_alone_stays_a_string_and_images_follow_their_text() {
        assert_eq!(
            PromptContent::from("hi").into_input(),
            UserInput::Text("hi".into())
        );
        let content = PromptContent {
            text: "look\n[image: a.png]".into(),
            images: vec![PromptImage {
                media_type: ImageMediaType::Png,
                base64: "iVBORw==".into(),
            }],
            words_at: 0,
        };
        assert_eq!(
            content.into_input(),
            UserInput::Blocks(vec![
                json!({"type": "text", "text": "look\n[image: a.png]"}),
                json!({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw=="}}),
            ])
        );
        let bare = PromptContent {
            text: " ".into(),
            images: vec![PromptImage {
                media_type: ImageMediaType::Gif,
                base64: "R0lG".into(),
            }],
            words_at: 0,
        };
        let UserInput::Blocks(blocks) = bare.into_input() else {
            panic!("blocks")
        };
        assert_eq!(blocks.len(), 1, "no empty text block: {blocks:?}");
    }
}
