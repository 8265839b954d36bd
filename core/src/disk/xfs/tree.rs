//! The writer's input tree: paths resolved into directories, files and symlinks, with
//! the parents they imply, children sorted by name (so the volume does not depend on
//! the order of the input), and inode numbers in pre-order.

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::raw::{SYMLINK_MAXLEN, S_IFDIR, S_IFLNK, S_IFREG};
use super::write::{ItemKind, XfsItem};
use crate::error::{Error, Result};

/// The longest name XFS stores (a u8 length).
const MAX_NAME: usize = 255;

#[derive(Debug)]
pub enum NodeKind<'a> {
    Dir,
    File(Cow<'a, [u8]>),
    Symlink(Vec<u8>),
}

#[derive(Debug)]
pub struct Node<'a> {
    pub name: Vec<u8>,
    pub path: String,
    pub parent: usize,
    /// Full mode: file type and permission bits.
    pub mode: u16,
    pub kind: NodeKind<'a>,
    pub children: Vec<usize>,
    pub ino: u64,
}

impl Node<'_> {
    pub fn is_dir(&self) -> bool {
        matches!(self.kind, NodeKind::Dir)
    }

    /// The directory entry type (XFS_DIR3_FT_*).
    pub fn ftype(&self) -> u8 {
        match self.kind {
            NodeKind::Dir => super::raw::FT_DIR,
            NodeKind::File(_) => super::raw::FT_REG_FILE,
            NodeKind::Symlink(_) => super::raw::FT_SYMLINK,
        }
    }
}

/// Nodes with the root at 0, each parent before its children.
#[derive(Debug)]
pub struct Tree<'a> {
    pub nodes: Vec<Node<'a>>,
}

fn components(path: &str) -> Result<Vec<&str>> {
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(Vec::new());
    }
    let parts: Vec<&str> = trimmed.split('/').collect();
    for c in &parts {
        let bad = |why: &str| Err(Error::invalid(format!("XFS path {path:?}: {why}")));
        if c.is_empty() || *c == "." || *c == ".." {
            return bad("empty, '.' or '..' component");
        }
        if c.len() > MAX_NAME {
            return bad("a name is longer than 255 bytes");
        }
        if c.contains('\0') {
            return bad("a name contains a NUL byte");
        }
    }
    Ok(parts)
}

impl<'a> Tree<'a> {
    pub fn build(items: Vec<XfsItem<'a>>) -> Result<Tree<'a>> {
        let mut nodes = vec![Node {
            name: Vec::new(),
            path: String::new(),
            parent: 0,
            mode: S_IFDIR | 0o755,
            kind: NodeKind::Dir,
            children: Vec::new(),
            ino: 0,
        }];
        let mut index: BTreeMap<(usize, Vec<u8>), usize> = BTreeMap::new();
        let mut explicit = vec![false];
        for item in items {
            let parts = components(&item.path)?;
            let mut at = 0usize;
            let mut path = String::new();
            let (last, dirs) = match parts.split_last() {
                Some((l, d)) => (Some(*l), d),
                None => (None, &[][..]),
            };
            for c in dirs {
                path = join(&path, c);
                at = child_dir(&mut nodes, &mut index, &mut explicit, at, c, &path)?;
            }
            let Some(last) = last else {
                set_root(&mut nodes, &mut explicit, item)?;
                continue;
            };
            path = join(&path, last);
            let key = (at, last.as_bytes().to_vec());
            let perm = item.mode.map(|m| m & 0o7777);
            let (mode, kind) = match item.kind {
                ItemKind::Directory => (S_IFDIR | perm.unwrap_or(0o755), NodeKind::Dir),
                ItemKind::File(data) => (S_IFREG | perm.unwrap_or(0o644), NodeKind::File(data)),
                ItemKind::Symlink(target) => {
                    let t = target.into_bytes();
                    if t.is_empty() || t.len() > SYMLINK_MAXLEN || t.contains(&0) {
                        return Err(Error::invalid(format!(
                            "XFS symlink {path:?}: the target must be 1..=1024 bytes with no NUL"
                        )));
                    }
                    (S_IFLNK | perm.unwrap_or(0o777), NodeKind::Symlink(t))
                }
            };
            if let Some(&existing) = index.get(&key) {
                let is_dir = nodes.get(existing).is_some_and(Node::is_dir);
                let was_explicit = explicit.get(existing).copied().unwrap_or(true);
                if is_dir && matches!(kind, NodeKind::Dir) && !was_explicit {
                    if let (Some(n), Some(e)) =
                        (nodes.get_mut(existing), explicit.get_mut(existing))
                    {
                        n.mode = mode;
                        *e = true;
                    }
                    continue;
                }
                return Err(Error::invalid(format!("XFS path {path:?} is given twice")));
            }
            let id = nodes.len();
            nodes.push(Node {
                name: last.as_bytes().to_vec(),
                path,
                parent: at,
                mode,
                kind,
                children: Vec::new(),
                ino: 0,
            });
            explicit.push(true);
            index.insert(key, id);
        }
        // Children in name order: the BTreeMap is sorted by (parent, name).
        for (&(parent, _), &id) in &index {
            if let Some(p) = nodes.get_mut(parent) {
                p.children.push(id);
            }
        }
        Ok(Tree { nodes })
    }

    /// Node ids in pre-order (the root first): the order of inode numbers.
    pub fn preorder(&self) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.nodes.len());
        let mut stack = vec![0usize];
        while let Some(id) = stack.pop() {
            out.push(id);
            if let Some(n) = self.nodes.get(id) {
                stack.extend(n.children.iter().rev());
            }
        }
        out
    }

    pub fn node(&self, id: usize) -> Result<&Node<'a>> {
        self.nodes
            .get(id)
            .ok_or_else(|| Error::invalid(format!("XFS writer: node {id} out of range")))
    }
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}/{name}")
    }
}

/// The directory `name` under `parent`, made (mode 0755) if it does not exist yet.
fn child_dir(
    nodes: &mut Vec<Node<'_>>,
    index: &mut BTreeMap<(usize, Vec<u8>), usize>,
    explicit: &mut Vec<bool>,
    parent: usize,
    name: &str,
    path: &str,
) -> Result<usize> {
    let key = (parent, name.as_bytes().to_vec());
    if let Some(&id) = index.get(&key) {
        return if nodes.get(id).is_some_and(Node::is_dir) {
            Ok(id)
        } else {
            Err(Error::invalid(format!(
                "XFS path {path:?} is a file and a directory"
            )))
        };
    }
    let id = nodes.len();
    nodes.push(Node {
        name: name.as_bytes().to_vec(),
        path: path.to_string(),
        parent,
        mode: S_IFDIR | 0o755,
        kind: NodeKind::Dir,
        children: Vec::new(),
        ino: 0,
    });
    explicit.push(false);
    index.insert(key, id);
    Ok(id)
}

/// An item for the root itself: only a directory, which sets the root's mode.
fn set_root(nodes: &mut [Node<'_>], explicit: &mut [bool], item: XfsItem<'_>) -> Result<()> {
    if !matches!(item.kind, ItemKind::Directory) || explicit.first() == Some(&true) {
        return Err(Error::invalid(
            "XFS path \"/\" can only be given once, as a directory",
        ));
    }
    if let (Some(root), Some(e)) = (nodes.first_mut(), explicit.first_mut()) {
        root.mode = S_IFDIR | item.mode.map_or(0o755, |m| m & 0o7777);
        *e = true;
    }
    Ok(())
}
