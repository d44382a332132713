//! Drawing the wizard: one function per page, overlays (help, the right-click menu, the
//! preview, a question) on top. Everything from the tenant goes through `render::cell`
//! (control characters escaped, bounded) before it reaches the terminal.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Table, TableState, Wrap};
use ratatui::Frame;

use engine::event::{DeletedAction, Mode};

use super::state::{Ask, Screen, Wizard, MENU, NEW_ORG_FIELDS};
use crate::render::{cell, outcome_label, summary_text};

/// Colours, or none (`NO_COLOR`): then only bold and reverse video mark things.
#[derive(Debug, Clone, Copy)]
pub struct Theme {
    pub colour: bool,
}

impl Theme {
    fn accent(self) -> Style {
        if self.colour {
            Style::default()
                .fg(Color::Cyan)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::default().add_modifier(Modifier::BOLD)
        }
    }

    fn error(self) -> Style {
        if self.colour {
            Style::default().fg(Color::Red).add_modifier(Modifier::BOLD)
        } else {
            Style::default().add_modifier(Modifier::BOLD)
        }
    }

    fn cursor(self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }

    fn dim(self) -> Style {
        if self.colour {
            Style::default().fg(Color::DarkGray)
        } else {
            Style::default()
        }
    }
}

const SPINNER: [&str; 4] = ["|", "/", "-", "\\"];

pub fn draw(f: &mut Frame, w: &mut Wizard, theme: Theme, tick: usize) {
    let [title, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(2),
    ])
    .areas(f.area());
    let (step, name) = match w.screen {
        Screen::Orgs | Screen::Reading => (1, "Organization"),
        Screen::Search => (2, "Users and groups"),
        Screen::Deleted => (3, "Deleted objects"),
        Screen::Importing | Screen::Results => (4, "Results"),
    };
    f.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled("roster wizard", theme.accent()),
            Span::raw(format!(" — step {step} of 4: {name}")),
            Span::styled(
                w.org_name()
                    .filter(|_| w.screen != Screen::Orgs)
                    // With a server to name, the arrow says what "org" would.
                    .map(|o| match w.target {
                        None => format!("   org {}", cell(o)),
                        Some(_) => format!("   {}", cell(o)),
                    })
                    .unwrap_or_default(),
                theme.dim(),
            ),
            Span::styled(
                w.target
                    .as_deref()
                    .map(|t| format!(" → {}", cell(t)))
                    .unwrap_or_default(),
                theme.dim(),
            ),
        ])),
        title,
    );
    let keys = match w.screen {
        Screen::Orgs => "↑/↓ choose · Enter read · c deleted objects · n New… · ? help · q quit",
        Screen::Reading | Screen::Importing => "please wait… · Ctrl-C quit",
        Screen::Search if w.editing => {
            "type · Enter search now · Ctrl-U clear · Esc leave the field"
        }
        Screen::Search => {
            "/ search · Space tick · a all · i invert · p preview · Enter next · ? help"
        }
        Screen::Deleted => "Space mark · g ignore · d disable · x delete · Enter import · Esc back",
        Screen::Results => "↑/↓ scroll · f filter by result · Enter or q close",
    };
    let status = if w.status.is_empty() {
        Line::from(Span::styled(keys, theme.dim()))
    } else {
        Line::from(Span::styled(cell(&w.status), theme.error()))
    };
    let counts = match w.screen {
        Screen::Search => format!(
            "{} of {} shown · {} ticked",
            w.shown.len(),
            w.rows.len(),
            w.ticked.len()
        ),
        Screen::Deleted => {
            let removing = w
                .deleted
                .iter()
                .filter(|d| d.action != DeletedAction::Ignore)
                .count();
            format!(
                "{} deleted objects · {removing} to disable or delete (at most {} at once)",
                w.deleted.len(),
                engine::event::RunOptions::default().max_deletions
            )
        }
        _ => String::new(),
    };
    f.render_widget(Paragraph::new(vec![Line::from(counts), status]), footer);

    match w.screen {
        Screen::Orgs => orgs(f, body, w, theme),
        Screen::Reading | Screen::Importing => busy(f, body, w, theme, tick),
        Screen::Search => search(f, body, w, theme),
        Screen::Deleted => deleted(f, body, w, theme),
        Screen::Results => results(f, body, w, theme),
    }
    if let Some(ask) = w.ask {
        let text = match ask {
            Ask::Quit => {
                "Quit? The ticked entries and chosen actions will be lost. (y/n)".to_owned()
            }
            Ask::Delete => {
                "Delete the marked objects from the server for good when importing? (y/n)"
                    .to_owned()
            }
        };
        popup(f, body, "Confirm", vec![Line::from(text)], 64, 5);
    }
    if w.help {
        help(f, body);
    }
}

fn popup(f: &mut Frame, area: Rect, title: &str, lines: Vec<Line>, width: u16, height: u16) {
    let w = width.min(area.width);
    let h = height.min(area.height);
    let r = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::default()
                .borders(Borders::ALL)
                .title(title.to_owned()),
        ),
        r,
    );
}

fn help(f: &mut Frame, area: Rect) {
    let lines: Vec<Line> = [
        "Everywhere: ? help · Esc one step back · Ctrl-C quit at once",
        "  q quit (asks when ticks or actions would be lost)",
        "Organization: ↑/↓ choose · c check deleted objects · Enter read",
        "  n New…: a name, Tab, a tenant fixture file, Enter",
        "Search: / search (Enter search now · Ctrl-U clear · Esc leave)",
        "  Space tick · a select all · i invert (of the rows shown;",
        "  the right mouse button opens the same menu, a click ticks)",
        "  p preview the dry run · Enter import, or next to deleted objects",
        "Deleted objects: Space mark · g ignore · d disable · x delete",
        "  (asks) · Enter import",
        "Results: f filter by result · Enter or q close",
        "Nothing is written before the final Enter; an import finishes.",
        "Any key closes this help.",
    ]
    .into_iter()
    .map(Line::from)
    .collect();
    let height = lines.len() as u16 + 2;
    popup(f, area, "Help", lines, 72, height);
}

/// Scrolls `offset` as little as possible to keep `selected` among the `height - 1` rows
/// under the header; returns the state for the rows from `offset` on (only those on screen are
/// built: at 100k rows, drawing stays cheap).
fn window(selected: usize, offset: &mut usize, height: u16) -> (usize, TableState) {
    let rows = usize::from(height.saturating_sub(1)).max(1);
    if selected < *offset {
        *offset = selected;
    } else if selected >= *offset + rows {
        *offset = selected + 1 - rows;
    }
    (
        rows,
        TableState::default().with_selected(Some(selected - *offset)),
    )
}

fn orgs(f: &mut Frame, area: Rect, w: &Wizard, theme: Theme) {
    let form = w.new_org.as_ref().map_or(1, |f| f.used() as u16);
    let [list, options] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(form + 2)]).areas(area);
    let rows: Vec<Row> = w
        .orgs
        .iter()
        .map(|o| Row::new(vec![cell(&o.name), cell(&o.source)]))
        .chain(std::iter::once(Row::new(vec![
            "New…".to_owned(),
            "press n: a tenant fixture file".to_owned(),
        ])))
        .collect();
    let mut state = TableState::default().with_selected(Some(w.org));
    f.render_stateful_widget(
        Table::new(rows, [Constraint::Length(24), Constraint::Min(20)])
            .header(Row::new(vec!["Organization", "Source"]).style(theme.accent()))
            .row_highlight_style(theme.cursor())
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .title("Pick an organization"),
            ),
        list,
        &mut state,
    );
    let check = if w.check_deleted { "[x]" } else { "[ ]" };
    let mut lines = vec![Line::from(format!(
        "{check} Check deleted objects (c): deleted in Entra ID, still on the server"
    ))];
    if let Some(form) = &w.new_org {
        lines = NEW_ORG_FIELDS
            .iter()
            .zip(&form.fields)
            .take(form.used())
            .enumerate()
            .map(|(i, (label, value))| {
                let mark = if i == form.at { "▸" } else { " " };
                Line::from(format!("{mark} {label}: {}", cell(value)))
            })
            .collect();
    }
    f.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::TOP).title(
            if w.new_org.is_some() {
                "New organization (Tab or Enter: next field; Enter on the last adds; Esc cancels)"
            } else {
                "Options"
            },
        )),
        options,
    );
}

fn busy(f: &mut Frame, area: Rect, w: &Wizard, theme: Theme, tick: usize) {
    let mut lines = vec![
        Line::from(""),
        Line::from(vec![
            Span::styled(
                format!(" {} ", SPINNER[tick % SPINNER.len()]),
                theme.accent(),
            ),
            Span::raw(cell(&w.busy)),
        ]),
    ];
    if !w.progress.is_empty() {
        lines.push(Line::from(Span::styled(
            format!("   {}", w.progress),
            theme.dim(),
        )));
    }
    if let Some(sign_in) = &w.sign_in {
        lines.push(Line::from(""));
        lines.push(Line::from(Span::styled(cell(sign_in), theme.accent())));
    }
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), area);
}

fn search(f: &mut Frame, area: Rect, w: &mut Wizard, theme: Theme) {
    let [field, table] = Layout::vertical([Constraint::Length(1), Constraint::Min(2)]).areas(area);
    let field_style = if w.editing {
        theme.cursor()
    } else {
        Style::default()
    };
    f.render_widget(
        Paragraph::new(Line::from(vec![
            Span::raw("Search: "),
            Span::styled(
                format!("{}{}", cell(&w.query), if w.editing { "_" } else { "" }),
                field_style,
            ),
            Span::styled(
                if w.query.is_empty() && !w.editing {
                    "  (press / to search; empty shows everything)"
                } else {
                    ""
                },
                theme.dim(),
            ),
        ])),
        field,
    );
    // The top border, then the header.
    w.table_top = table.y + 2;
    let (visible, mut state) = window(
        w.cursor,
        &mut w.table_offset,
        table.height.saturating_sub(1),
    );
    let rows: Vec<Row> = w
        .shown
        .iter()
        .skip(w.table_offset)
        .take(visible)
        .map(|&i| {
            let r = &w.rows[i];
            let tick = if w.ticked.contains(&r.id) {
                "[x]"
            } else {
                "[ ]"
            };
            Row::new(vec![
                Cell::from(tick),
                Cell::from(cell(&r.name)),
                Cell::from(cell(&r.row_type)),
                Cell::from(cell(r.department.as_deref().unwrap_or(""))),
                Cell::from(cell(
                    r.description.as_deref().or(r.upn.as_deref()).unwrap_or(""),
                )),
            ])
        })
        .collect();
    f.render_stateful_widget(
        Table::new(
            rows,
            [
                Constraint::Length(3),
                Constraint::Percentage(30),
                Constraint::Length(21),
                Constraint::Percentage(20),
                Constraint::Min(10),
            ],
        )
        .header(
            Row::new(vec!["", "Name", "Type", "Department", "Description"]).style(theme.accent()),
        )
        .row_highlight_style(theme.cursor())
        .block(Block::default().borders(Borders::TOP)),
        table,
        &mut state,
    );
    if let Some(menu) = w.menu {
        let r = Rect {
            x: menu.x.min(area.right().saturating_sub(20)),
            y: menu.y.min(area.bottom().saturating_sub(4)),
            width: 20.min(area.width),
            height: 4.min(area.height),
        };
        let items: Vec<Line> = MENU
            .iter()
            .enumerate()
            .map(|(i, m)| {
                if i == menu.item {
                    Line::styled(m.to_string(), theme.cursor())
                } else {
                    Line::from(m.to_string())
                }
            })
            .collect();
        f.render_widget(Clear, r);
        f.render_widget(
            Paragraph::new(items).block(Block::default().borders(Borders::ALL)),
            r,
        );
    }
    if let Some(preview) = &w.preview {
        let lines = match preview {
            Err(msg) => vec![Line::from(cell(msg))],
            Ok(p) => {
                let mut lines = Vec::new();
                if let Some(why) = &p.refusal {
                    lines.push(Line::styled(
                        format!("Refused: {}", cell(why)),
                        theme.error(),
                    ));
                }
                let summary = engine::event::Summary::of(&p.entries);
                lines.push(Line::from(format!("Would do: {}", summary_text(&summary))));
                lines.push(Line::from(""));
                // What would change, as many as the popup can show (at 100k ticks,
                // drawing every one would stall the screen); the summary counts them all.
                let shown = usize::from(area.height.saturating_sub(8)).max(1);
                let changing: Vec<_> = p
                    .entries
                    .iter()
                    .filter(|e| e.op.is_some() || e.outcome != engine::event::Outcome::Unchanged)
                    .collect();
                for e in changing.iter().take(shown) {
                    lines.push(Line::from(format!(
                        "{:<28} {:<6} {:<26} {}",
                        cell(&e.name),
                        e.kind.as_str(),
                        outcome_label(e.outcome, Mode::DryRun),
                        cell(&e.detail)
                    )));
                }
                if changing.len() > shown {
                    lines.push(Line::styled(
                        format!(
                            "… and {} more (`roster plan` lists every entry)",
                            changing.len() - shown
                        ),
                        theme.dim(),
                    ));
                }
                lines.push(Line::from(""));
                lines.push(Line::styled(
                    "Nothing was written. Any key closes the preview.",
                    theme.dim(),
                ));
                lines
            }
        };
        popup(
            f,
            area,
            "Dry run of the ticked entries",
            lines,
            area.width.saturating_sub(4),
            area.height.saturating_sub(2),
        );
    }
}

fn deleted(f: &mut Frame, area: Rect, w: &mut Wizard, theme: Theme) {
    let mut offset = 0;
    let (visible, mut state) = window(w.deleted_cursor, &mut offset, area.height.saturating_sub(1));
    let rows: Vec<Row> = w
        .deleted
        .iter()
        .skip(offset)
        .take(visible)
        .map(|d| {
            let o = &d.object;
            Row::new(vec![
                if d.marked { "*" } else { " " }.to_owned(),
                cell(&o.name),
                o.kind.as_str().to_owned(),
                o.evidence.as_str().to_owned(),
                o.deleted_at
                    .map(|t| t.format("%Y-%m-%d").to_string())
                    .unwrap_or_default(),
                d.action.as_str().to_owned(),
            ])
        })
        .collect();
    f.render_stateful_widget(
        Table::new(
            rows,
            [
                Constraint::Length(1),
                Constraint::Percentage(35),
                Constraint::Length(6),
                Constraint::Length(13),
                Constraint::Length(11),
                Constraint::Min(8),
            ],
        )
        .header(
            Row::new(vec!["", "Name", "Kind", "Evidence", "Deleted at", "Action"])
                .style(theme.accent()),
        )
        .row_highlight_style(theme.cursor())
        .block(
            Block::default()
                .borders(Borders::TOP)
                .title("Deleted in Entra ID, still on the server: choose what happens to each"),
        ),
        area,
        &mut state,
    );
}

fn results(f: &mut Frame, area: Rect, w: &mut Wizard, theme: Theme) {
    let Some(r) = w.results.clone() else { return };
    let [head, table] = Layout::vertical([Constraint::Length(4), Constraint::Min(2)]).areas(area);
    let summary = engine::event::Summary::of(&r.entries);
    let filter = match w.filter {
        Some(o) => format!("   showing: {} only (f)", o.as_str()),
        None => String::new(),
    };
    f.render_widget(
        Paragraph::new(vec![
            Line::from(vec![
                Span::styled(
                    match r.mode {
                        Mode::Apply => "Import results",
                        Mode::DryRun => "Dry run",
                    },
                    theme.accent(),
                ),
                Span::raw(format!(" — run {}", r.run)),
            ]),
            Line::from(format!("Status: {}", cell(&r.status))),
            Line::from(format!("Summary: {}{filter}", summary_text(&summary))),
            Line::from(Span::styled(
                if r.problems.is_empty() {
                    String::new()
                } else {
                    format!(
                        "{} warnings while reading the tenant (roster report {} shows the run)",
                        r.problems.len(),
                        r.run
                    )
                },
                theme.dim(),
            )),
        ])
        .wrap(Wrap { trim: false }),
        head,
    );
    let shown = w.results_shown();
    let mut offset = 0;
    let (visible, mut state) = window(
        w.results_cursor,
        &mut offset,
        table.height.saturating_sub(1),
    );
    let rows: Vec<Row> = shown
        .iter()
        .skip(offset)
        .take(visible)
        .map(|e| {
            Row::new(vec![
                cell(&e.name),
                e.kind.as_str().to_owned(),
                outcome_label(e.outcome, r.mode).to_owned(),
                cell(&e.detail),
            ])
        })
        .collect();
    f.render_stateful_widget(
        Table::new(
            rows,
            [
                Constraint::Percentage(25),
                Constraint::Length(6),
                Constraint::Length(26),
                Constraint::Min(10),
            ],
        )
        .header(Row::new(vec!["Name", "Kind", "Result", "Details"]).style(theme.accent()))
        .row_highlight_style(theme.cursor())
        .block(Block::default().borders(Borders::TOP)),
        table,
        &mut state,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wizard::state::{Done, PreviewView, ResultsView};
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    /// The screen as text, 80×24 (the smallest terminal the wizard promises to stay usable in).
    fn screen(w: &mut Wizard) -> String {
        let mut t = Terminal::new(TestBackend::new(80, 24)).unwrap();
        t.draw(|f| draw(f, w, Theme { colour: false }, 0)).unwrap();
        let buf = t.backend().buffer();
        (0..buf.area.height)
            .map(|y| {
                let line: String = (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect();
                line.trim_end().to_owned()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn press(w: &mut Wizard, text: &str) {
        for c in text.chars() {
            let code = match c {
                '\n' => KeyCode::Enter,
                c => KeyCode::Char(c),
            };
            w.key(KeyEvent::new(code, KeyModifiers::NONE));
        }
    }

    #[test]
    fn each_page_as_drawn() {
        let mut w = crate::wizard::state::tests::on_search();
        let orgs = {
            let mut o = Wizard::new(w.orgs.clone(), None);
            screen(&mut o)
        };
        insta::assert_snapshot!("1_organizations", orgs);
        let reading = {
            let mut r = Wizard::new(w.orgs.clone(), None);
            press(&mut r, "\n");
            r.done(Done::SignIn(
                "To sign in, open https://microsoft.com/devicelogin and enter the code FAKE-1234 (this screen waits and checks).".into(),
            ));
            screen(&mut r)
        };
        insta::assert_snapshot!("1_reading_and_signing_in", reading);
        press(&mut w, "  ");
        insta::assert_snapshot!("2_search", screen(&mut w));
        press(&mut w, "/golf\n");
        insta::assert_snapshot!("2_search_narrowed", screen(&mut w));
        w.menu = Some(crate::wizard::state::Menu {
            x: 20,
            y: 8,
            item: 1,
        });
        insta::assert_snapshot!("2_search_menu", screen(&mut w));
        w.menu = None;
        press(&mut w, "a");
        w.preview = Some(Ok(PreviewView {
            entries: vec![],
            refusal: None,
        }));
        press(&mut w, "z");
        press(&mut w, "p");
        w.done(Done::Preview(Ok(PreviewView {
            entries: vec![],
            refusal: Some(
                "it would disable or delete 60 objects, more than --max-deletions 50".into(),
            ),
        })));
        insta::assert_snapshot!("2_preview_refused", screen(&mut w));
        press(&mut w, "z\n");
        press(&mut w, "  dx");
        insta::assert_snapshot!("3_deleted_asking", screen(&mut w));
        press(&mut w, "y");
        insta::assert_snapshot!("3_deleted", screen(&mut w));
        press(&mut w, "?");
        insta::assert_snapshot!("help", screen(&mut w));
        press(&mut w, "z");
        let entries = vec![engine::event::EntryOutcome {
            kind: engine::model::Kind::User,
            id: engine::ObjectId::parse("0b0b0b0b-1111-4222-8333-444455556666").unwrap(),
            name: "Adele Vance".into(),
            outcome: engine::event::Outcome::Added,
            reason: None,
            detail: "login AdeleV@contoso.com".into(),
            changes: vec![],
            op: None,
        }];
        w.done(Done::Imported(Ok(ResultsView {
            run: "01a22302-9520-7290-90fd-b2d5378b5f71".into(),
            mode: Mode::Apply,
            entries,
            status: "completed".into(),
            problems: vec![],
        })));
        insta::assert_snapshot!("4_results", screen(&mut w));
        // A refusal (the deletion guard) is the run's status, on screen.
        w.done(Done::Imported(Ok(ResultsView {
            run: "01a22302-9520-7290-90fd-b2d5378b5f72".into(),
            mode: Mode::Apply,
            entries: vec![],
            status: "refused: it would disable or delete 60 objects, more than --max-deletions 50"
                .into(),
            problems: vec![],
        })));
        insta::assert_snapshot!("4_results_refused", screen(&mut w));
        // A live read under way: its progress.
        let mut r = Wizard::new(w.orgs.clone(), None);
        press(&mut r, "\n");
        r.progress = "Graph: 1200 objects in 13 pages, 14 requests".into();
        insta::assert_snapshot!("1_reading_progress", screen(&mut r));
    }

    /// A preview of 100,000 ticks draws what fits and says how many more there are.
    #[test]
    fn a_large_preview_shows_what_fits_and_counts_the_rest() {
        let mut w = crate::wizard::state::tests::on_search();
        let entry = engine::event::EntryOutcome {
            kind: engine::model::Kind::User,
            id: engine::ObjectId::parse("0b0b0b0b-1111-4222-8333-444455556666").unwrap(),
            name: "Someone".into(),
            outcome: engine::event::Outcome::Added,
            reason: None,
            detail: String::new(),
            changes: vec![],
            op: None,
        };
        w.preview = Some(Ok(PreviewView {
            entries: vec![entry; 100_000],
            refusal: None,
        }));
        let s = screen(&mut w);
        assert!(s.contains("Would do: 100000 added"), "{s}");
        assert!(s.contains("more (`roster plan` lists every entry)"), "{s}");
    }

    #[test]
    fn the_title_names_a_server_that_is_not_the_embedded_one() {
        let mut w = crate::wizard::state::tests::on_search();
        assert!(!screen(&mut w).lines().next().unwrap().contains('→'));
        w.target = Some("SCIM 127.0.0.1:8080".into());
        let s = screen(&mut w);
        let title = s.lines().next().unwrap();
        assert!(title.contains("→ SCIM 127.0.0.1:8080"), "{title}");
    }

    #[test]
    fn text_from_the_tenant_is_escaped_on_screen() {
        let mut w = crate::wizard::state::tests::on_search();
        w.rows[0].name = "evil\u{1b}[2J\u{7}name".into();
        let s = screen(&mut w);
        assert!(!s.contains('\u{1b}') && !s.contains('\u{7}'), "{s}");
        assert!(s.contains("evil"), "{s}");
    }
}
