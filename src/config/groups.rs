//! `[promotions]` and `[demotions]`: the action groups, each with both of
//! its commands.

use std::collections::HashSet;

use super::ini::{Document, Section};
use super::{Found, Reader};
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
        };
        for entry in promotions.entries() {
            groups.names.insert(entry.key.clone());
            let promotion = self.command(doc, promotions, &entry.key);
            let Some(demotion_entry) = demotions.get(&entry.key) else {
                self.error(
                    "promotions",
                    Some(&entry.key),
                    Some(entry.line),
                    format!(
                        "action group {:?} has a promotion but no demotion; add `{} = COMMAND` \
                         to [demotions]",
                        entry.key, entry.key
                    ),
                );
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
                self.error(
                    "demotions",
                    Some(&entry.key),
                    Some(entry.line),
                    format!(
                        "action group {:?} has a demotion but no promotion; add `{} = COMMAND` \
                         to [promotions]",
                        entry.key, entry.key
                    ),
                );
            }
        }
        groups
    }

    /// The command of group `key` in `section`, refused when empty.
    fn command(&mut self, doc: &Document, section: &Section, key: &str) -> Option<Found> {
        let found = self.own(doc, section, key)?;
        if found.value.trim().is_empty() {
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
