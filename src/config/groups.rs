//! `[promotions]` and `[demotions]`: the action groups, each with both of
//! its commands.

use std::collections::{HashMap, HashSet};

use super::ini::{Document, Entry, Section, text};
use super::{Found, Reader, hints};
use crate::model::GroupSpec;

/// The action groups of a file.
pub(super) struct Groups {
    /// The groups whose two commands are valid, in the order of
    /// `[promotions]`.
    pub specs: Vec<GroupSpec>,
    /// Every name of `[promotions]` or `[demotions]`, valid or not: a check
    /// naming a group whose command was refused is not also told that the
    /// group does not exist.
    pub names: HashSet<String>,
    /// Lines of `[promotions]` and `[demotions]` that read like
    /// `group = command` but continue the value above them: (section,
    /// group) → the hint saying so.
    swallowed: HashMap<(String, String), hints::Hint>,
}

impl Groups {
    /// Why `group`, which no key defines, may be missing: an indented line
    /// that would have defined it.
    pub fn swallowed(&self, group: &str) -> Option<&hints::Hint> {
        ["promotions", "demotions"]
            .into_iter()
            .find_map(|s| self.swallowed.get(&(s.to_owned(), group.to_owned())))
    }
}

impl Reader<'_> {
    pub(super) fn groups(
        &mut self,
        doc: &Document,
        promotions: &Section,
        demotions: &Section,
    ) -> Groups {
        let mut groups = Groups {
            specs: Vec::new(),
            names: HashSet::new(),
            swallowed: HashMap::new(),
        };
        for section in [promotions, demotions] {
            swallowed_groups(section, &mut groups.swallowed);
        }
        for entry in promotions.entries() {
            groups.names.insert(entry.key.clone());
            let promotion = self.command(doc, promotions, &entry.key);
            let Some(demotion_entry) = demotions.get(&entry.key) else {
                self.unpaired(entry, (promotions, demotions), &groups);
                continue;
            };
            let demotion = self.command(doc, demotions, &demotion_entry.key);
            if let (Some(promotion), Some(demotion)) = (promotion, demotion) {
                groups.specs.push(GroupSpec {
                    name: entry.key.clone(),
                    promotion: promotion.value,
                    demotion: demotion.value,
                });
            }
        }
        for entry in demotions.entries() {
            groups.names.insert(entry.key.clone());
            if promotions.get(&entry.key).is_none() {
                self.unpaired(entry, (demotions, promotions), &groups);
            }
        }
        groups
    }

    /// Reports a group of `sections.0` that `sections.1` lacks.
    fn unpaired(&mut self, entry: &Entry, (has, lacks): (&Section, &Section), groups: &Groups) {
        let (name, one, other) = match has.name.as_str() {
            "promotions" => (&entry.key, "promotion", "demotion"),
            _ => (&entry.key, "demotion", "promotion"),
        };
        let message = format!(
            "action group {name:?} has a {one} but no {other}; add `{name} = COMMAND` to [{}]",
            lacks.name
        );
        let hint = groups.swallowed.get(&(lacks.name.clone(), name.clone()));
        let message = self.explain(hint, message);
        self.error(&has.name, Some(name), Some(entry.line), message);
    }

    /// The command of group `key` in `section`, refused when empty.
    fn command(&mut self, doc: &Document, section: &Section, key: &str) -> Option<Found> {
        let found = self.own(doc, section, key)?;
        if found.value.is_empty() {
            self.error(
                &section.name,
                Some(key),
                found.line,
                "empty command; expected a shell command (`true` does nothing)".into(),
            );
            return None;
        }
        Some(found)
    }
}

/// Adds to `found` every line of `section` that reads like `group =
/// command` but continues the value above it.
fn swallowed_groups(section: &Section, found: &mut HashMap<(String, String), hints::Hint>) {
    for entry in section.entries() {
        for (line, written) in entry.value_lines().skip(1) {
            let Some(group) = hints::key_like(written) else {
                continue;
            };
            let hint = hints::Hint {
                text: format!(
                    "in [{}], {}",
                    section.name,
                    hints::swallowed(line, written, &entry.key)
                ),
                swallowed: Some(line),
            };
            found
                .entry((section.name.clone(), text::lower(group)))
                .or_insert(hint);
        }
    }
}
