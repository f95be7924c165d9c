//! Context for the next prompt (a thread, a project file) and the project's files as
//! `/claude files` and `/claude file` show them.

use std::collections::HashMap;
use std::path::PathBuf;

use super::error::{size, ContextError, ServiceError};
use super::{ChatService, SessionInfo};
use crate::chat::attachments::inert_closings;
use crate::chat::render::code_block;
use crate::files::{self, FileContent, FileNode, NodeKind};
use crate::mattermost::model::Post;
use crate::sessions::SessionHandle;

/// Inline limit of `/claude file` and `/claude context file`.
const MAX_INLINE_FILE: usize = 12_000;

/// The longest prefix of `text` of at most `max` bytes that ends at a character boundary.
fn cut_to(text: &str, max: usize) -> &str {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The post id in a permalink (`…/pl/<id>`, `…/<team>/pl/<id>`) or a bare id.
pub(super) fn post_id_of(link: &str) -> Option<String> {
    let last = link.trim().trim_end_matches('/').rsplit('/').next()?;
    let id = last.split(['?', '#']).next()?;
    (!id.is_empty()).then(|| id.to_owned())
}

fn tree_lines(node: &FileNode, depth: usize, out: &mut String) {
    for child in &node.children {
        out.push_str(&"  ".repeat(depth));
        out.push_str(&child.name);
        if child.kind == NodeKind::Directory {
            out.push('/');
        }
        out.push('\n');
        tree_lines(child, depth + 1, out);
    }
}

impl ChatService {
    fn add_context(&self, session_id: &str, block: String) {
        if let Ok(mut st) = self.state.lock() {
            st.context
                .entry(session_id.to_owned())
                .or_default()
                .push(block);
        }
    }

    /// Adds a thread as context for the session's next prompt, its first posts up to `limit`
    /// bytes; the caller must be able to read the thread's channel. Answers what was added.
    pub(crate) async fn context_thread(
        &self,
        handle: &SessionHandle,
        user_id: &str,
        link: &str,
        limit: usize,
    ) -> Result<String, ServiceError> {
        let post_id = post_id_of(link).ok_or(ContextError::ThreadNotNamed)?;
        let list = self
            .api
            .get_post_thread(&post_id)
            .await
            .map_err(|_| ContextError::ThreadNotFound(post_id.clone()))?;
        let posts = list.posts.unwrap_or_default();
        let channel = posts
            .get(&post_id)
            .or_else(|| posts.values().next())
            .map(|p| p.channel_id.clone())
            .ok_or_else(|| ContextError::ThreadEmpty(post_id.clone()))?;
        let can_read = self
            .api
            .has_permission_to_channel(user_id, &channel, "read_channel")
            .await
            .unwrap_or(false);
        if !can_read {
            return Err(ContextError::CannotReadThread.into());
        }
        let mut ordered: Vec<&Post> = posts.values().collect();
        ordered.sort_by_key(|p| (p.create_at, p.id.clone()));
        let mut names: HashMap<String, String> = HashMap::new();
        let mut body = String::new();
        let (mut added, mut last_cut) = (0, false);
        for p in &ordered {
            if body.len() >= limit {
                break;
            }
            if !names.contains_key(&p.user_id) {
                let n = self.username(&p.user_id).await;
                names.insert(p.user_id.clone(), n);
            }
            let line = format!("@{}: {}\n", names[&p.user_id], p.message);
            let kept = cut_to(&line, limit - body.len());
            last_cut = kept.len() < line.len();
            body.push_str(kept);
            added += 1;
        }
        let whole: usize = ordered.iter().map(|p| p.message.len()).sum();
        let body = inert_closings(&body);
        let block = format!(
            "<mattermost-thread root=\"{post_id}\" channel=\"{channel}\">\n{body}</mattermost-thread>"
        );
        self.add_context(handle.id(), block);
        if added == ordered.len() && !last_cut {
            return Ok(format!(
                "The thread ({} posts) was added as context for the next prompt.",
                ordered.len()
            ));
        }
        let cut_post = if last_cut {
            " and the end of the last one added"
        } else {
            ""
        };
        Ok(format!(
            "The thread ({} posts, {}) was added as context for the next prompt, cut at the context limit of {} (MaxContextKB): {} later post(s){cut_post} were left out.",
            ordered.len(),
            size(whole),
            size(limit),
            ordered.len() - added,
        ))
    }

    /// Adds a text file of the session's project as context, its first `limit` bytes.
    pub(crate) async fn context_file(
        &self,
        (handle, info): (&SessionHandle, &SessionInfo),
        path: &str,
        limit: usize,
    ) -> Result<String, ServiceError> {
        let root = PathBuf::from(&info.project_path);
        let (path, content, whole) = match files::read(root, path.to_owned(), limit).await? {
            FileContent::Text { path, content, .. } => (path, content, None),
            FileContent::Attachment {
                path,
                bytes,
                reason: files::AttachmentReason::TooLongToShow,
                ..
            } => {
                let text = String::from_utf8_lossy(&bytes);
                let head = cut_to(&text, limit).to_owned();
                (path, head, Some(bytes.len()))
            }
            FileContent::Attachment { path, .. } => return Err(ContextError::Binary(path).into()),
            FileContent::TooLarge { path, size } => {
                return Err(ContextError::TooLarge { path, bytes: size }.into())
            }
        };
        let block = format!(
            "<project-file path=\"{path}\">\n{}\n</project-file>",
            inert_closings(&content)
        );
        self.add_context(handle.id(), block);
        Ok(match whole {
            None => format!("`{path}` was added as context for the next prompt."),
            Some(whole) => format!(
                "The first {} of `{path}` ({}) were added as context for the next prompt: the rest is beyond the context limit (MaxContextKB).",
                size(content.len()),
                size(whole)
            ),
        })
    }

    /// `/claude files [dir]`: the project's tree, three levels deep, as a code block.
    pub(crate) async fn files_text(
        &self,
        info: &SessionInfo,
        dir: Option<&str>,
    ) -> Result<String, ServiceError> {
        let root = PathBuf::from(&info.project_path);
        let listing = files::list(root, dir.unwrap_or("").to_owned(), 3, 300).await?;
        let mut tree = format!("{}/\n", dir.unwrap_or("."));
        tree_lines(&listing.tree, 1, &mut tree);
        let mut text = code_block("", &tree);
        if listing.count_capped || listing.depth_capped {
            text.push_str("\n(Shortened: name a subdirectory to see more.)");
        }
        Ok(text)
    }

    /// `/claude file <path>`: a text file inline, or why it cannot be shown.
    pub(crate) async fn file_text(
        &self,
        info: &SessionInfo,
        path: &str,
    ) -> Result<String, ServiceError> {
        let root = PathBuf::from(&info.project_path);
        Ok(
            match files::read(root, path.to_owned(), MAX_INLINE_FILE).await? {
                FileContent::Text {
                    path,
                    content,
                    language,
                } => format!("`{path}`\n{}", code_block(language.unwrap_or(""), &content)),
                FileContent::Attachment { path, .. } => {
                    format!("`{path}` is binary or too long to show here.")
                }
                FileContent::TooLarge { path, size } => {
                    format!("`{path}` is too large to show ({size} bytes).")
                }
            },
        )
    }
}
