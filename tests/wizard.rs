//! `roster wizard` as an admin meets it: the real binary in a pseudo-terminal, driven by
//! keystrokes. An import made by ticking boxes is recorded exactly as `roster import` with the
//! same selection records it: the same entries, the same server. Without a terminal, the
//! wizard says which commands do the same and exits 2.

mod common;

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// A child process on a pseudo-terminal of 100×30, and everything it wrote, escape sequences
/// removed.
struct Pty {
    child: Child,
    master: std::fs::File,
    seen: Arc<Mutex<Vec<u8>>>,
}

impl Pty {
    fn spawn(store: &std::path::Path, args: &[&str]) -> Pty {
        Pty::spawn_with(store, args, true)
    }

    fn spawn_with(store: &std::path::Path, args: &[&str], no_color: bool) -> Pty {
        Pty::spawn_sized(store, args, no_color, (30, 100))
    }

    /// On a terminal of `rows`×`cols` (what [`Pty::screen`] replays is 100×30 whatever).
    fn spawn_sized(
        store: &std::path::Path,
        args: &[&str],
        no_color: bool,
        (rows, cols): (u16, u16),
    ) -> Pty {
        let (mut master, mut slave) = (0, 0);
        let size = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: openpty writes two descriptors we then own; no other pointer is kept.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                &size,
            )
        };
        assert_eq!(rc, 0, "openpty");
        // SAFETY: both descriptors were just opened and are owned here alone.
        let (master, slave) =
            unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_roster"));
        cmd.args(args)
            .env("ROSTER_STORE", store)
            .env("TERM", "xterm-256color")
            .env("ROSTER_LOG", "off")
            .env_remove("NO_COLOR")
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        // SAFETY: only async-signal-safe calls between fork and exec: a new session whose
        // controlling terminal is the pseudo-terminal.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                libc::ioctl(0, libc::TIOCSCTTY, 0);
                Ok(())
            });
        }
        if no_color {
            cmd.env("NO_COLOR", "1");
        }
        let child = cmd.spawn().unwrap();
        drop(cmd);
        let master = std::fs::File::from(master);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (mut reader, into) = (master.try_clone().unwrap(), seen.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                into.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Pty {
            child,
            master,
            seen,
        }
    }

    /// The screen as the terminal shows it now: what was written, replayed on a 100×30 grid
    /// (cursor moves, clears, text; styles ignored) — enough of a terminal for ratatui's output.
    fn screen(&self) -> String {
        let raw = String::from_utf8_lossy(&self.seen.lock().unwrap()).into_owned();
        let (rows, cols) = (30usize, 100usize);
        let mut grid = vec![vec![' '; cols]; rows];
        let (mut r, mut c) = (0usize, 0usize);
        let mut chars = raw.chars().peekable();
        while let Some(ch) = chars.next() {
            match ch {
                '\u{1b}' if chars.peek() == Some(&'[') => {
                    chars.next();
                    let mut params = String::new();
                    let mut end = ' ';
                    for ch in chars.by_ref() {
                        if ('@'..='~').contains(&ch) {
                            end = ch;
                            break;
                        }
                        params.push(ch);
                    }
                    let nums: Vec<usize> = params
                        .trim_start_matches('?')
                        .split(';')
                        .map(|n| n.parse().unwrap_or(0))
                        .collect();
                    match end {
                        'H' | 'f' => {
                            r = nums.first().copied().unwrap_or(1).max(1) - 1;
                            c = nums.get(1).copied().unwrap_or(1).max(1) - 1;
                        }
                        'J' => grid = vec![vec![' '; cols]; rows],
                        'K' if r < rows => grid[r][c.min(cols)..].fill(' '),
                        'h' | 'l' if params.starts_with("?1049") => {
                            grid = vec![vec![' '; cols]; rows];
                        }
                        _ => {}
                    }
                }
                '\u{1b}' => {
                    chars.next();
                }
                '\r' => c = 0,
                '\n' => r += 1,
                ch if ch.is_control() => {}
                ch => {
                    if r < rows && c < cols {
                        grid[r][c] = ch;
                    }
                    c += 1;
                }
            }
        }
        grid.into_iter()
            .map(|l| l.into_iter().collect::<String>().trim_end().to_owned())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Waits until the screen shows `what`.
    #[track_caller]
    fn wait_for(&self, what: &str) {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let screen = self.screen();
            if screen.contains(what) {
                return;
            }
            assert!(
                Instant::now() < until,
                "{what:?} never appeared; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything written, as it was written.
    fn raw(&self) -> String {
        String::from_utf8_lossy(&self.seen.lock().unwrap()).into_owned()
    }

    /// Resizes the terminal, as a window manager does (the kernel signals SIGWINCH).
    fn resize(&self, rows: u16, cols: u16) {
        use std::os::fd::AsRawFd;
        let size = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one winsize from the pointer, which outlives the call.
        let rc = unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &size) };
        assert_eq!(rc, 0, "TIOCSWINSZ");
    }

    fn send(&mut self, keys: &str) {
        for b in keys.bytes() {
            self.master.write_all(&[b]).unwrap();
            self.master.flush().unwrap();
            std::thread::sleep(Duration::from_millis(15));
        }
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn json(r: &Roster, args: &[&str]) -> Value {
    let (_, out, err) = r.run(args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}\n{out}\n{err}"))
}

#[test]
fn an_import_through_the_wizard_is_recorded_as_roster_import_records_it() {
    let (wizard, cli) = (Roster::new(), Roster::new());
    for r in [&wizard, &cli] {
        r.add_demo("contoso", &fixtures().join("demo/tenant.json"));
    }
    // What the search shows for "sales", by id: what the wizard ticks below.
    let ids: Vec<String> = json(&wizard, &["search", "contoso", "sales", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    let n = ids.len();
    let mut pty = Pty::spawn(wizard.store.path(), &["wizard"]);
    pty.wait_for("step 1 of 5");
    pty.send("\r");
    pty.wait_for("61 of 61 shown");
    // Search "sales", select all it shows.
    pty.send("/sales\r");
    pty.wait_for(&format!("{n} of 61 shown · 0 ticked"));
    pty.send("a");
    pty.wait_for(&format!("{n} of 61 shown · {n} ticked"));
    // Next: the deleted objects; the first two marked and disabled, the third deleted.
    pty.send("\r");
    pty.wait_for("step 3 of 5");
    pty.send("  d");
    pty.wait_for("2 to disable or delete");
    pty.send("x");
    pty.wait_for("(y/n)");
    pty.send("y");
    pty.wait_for("3 to disable or delete");
    // Enter: the review — what the import would do, counted — before anything is written.
    pty.send("\r");
    pty.wait_for("step 4 of 5: Review");
    pty.wait_for("2 to disable, 1 to delete");
    assert_eq!(
        json(&wizard, &["runs", "--json"]),
        serde_json::json!([]),
        "nothing written yet"
    );
    // The deletion asks for `delete`, typed.
    pty.send("\r");
    pty.wait_for("Type delete and press Enter");
    pty.send("delete\r");
    pty.wait_for("Import results");
    pty.wait_for("completed");
    pty.send("q");
    let status = pty.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    // The screen is cleared on leaving; the run and how to see it again stay said.
    let run = json(&wizard, &["runs", "--json"])[0]["run"]
        .as_str()
        .unwrap()
        .to_owned();
    let said = format!("`roster report {run}` shows it again");
    let until = Instant::now() + Duration::from_secs(10);
    while !pty.raw().contains(&said) {
        assert!(
            Instant::now() < until,
            "{said:?} never said:\n{}",
            pty.raw()
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // The same selection as commands: the rows the search showed, by id; the same actions.
    let deleted = json(&wizard, &["deleted", "last", "--json"]);
    let actions: Vec<String> = deleted
        .as_array()
        .unwrap()
        .iter()
        .take(3)
        .zip(["disable", "disable", "delete"])
        .map(|(d, a)| format!("{}={a}", d["id"].as_str().unwrap()))
        .collect();
    let mut args = vec!["import", "contoso", "--check-deleted", "--json"];
    for id in &ids {
        args.extend(["--select", id]);
    }
    for a in &actions {
        args.extend(["--action", a]);
    }
    let by_cli = json(&cli, &args);
    let by_wizard = json(&wizard, &["report", "last", "--json"]);
    assert_eq!(by_wizard["entries"], by_cli["entries"]);
    assert_eq!(by_wizard["summary"], by_cli["summary"]);
    assert_eq!(
        wizard.expect(0, &["server", "dump"]),
        cli.expect(0, &["server", "dump"])
    );
    // The run records the ticks as ids, and the actions, as the command line does.
    let started = |r: &Roster| -> Value {
        let events = r.expect(0, &["events", "last"]);
        let first: Value = serde_json::from_str(events.lines().next().unwrap()).unwrap();
        first["payload"].clone()
    };
    let (w, c) = (started(&wizard), started(&cli));
    assert_eq!(w["selection"], c["selection"]);
    assert_eq!(w["options"], c["options"]);
    assert_eq!(w["inputsDigest"], c["inputsDigest"]);
    wizard.expect(0, &["replay", "last"]);
    wizard.expect(0, &["verify"]);
}

#[test]
fn without_a_terminal_the_wizard_names_the_commands() {
    let r = Roster::new();
    r.add_demo("contoso", &fixtures().join("demo/tenant.json"));
    let (code, out, err) = r.run(&["wizard"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("needs a terminal") && err.contains("roster import ORG"),
        "{err}"
    );
    let (code, _, err) = r.run_with(&["wizard"], &[("TERM", "dumb")]);
    assert_eq!(code, 2, "{err}");
}

/// *New…* with a tenant id adds a live org: the device-code sign-in is shown on the wizard's
/// screen and polled while it waits (here `fake-graph` approves after two polls), then the
/// tenant is read through Graph onto the search page.
#[test]
fn a_live_org_is_added_and_signed_in_on_screen() {
    let fake = Fake::start(
        &fixtures().join("demo/tenant.json"),
        &["--approve-after", "2"],
    );
    let r = Roster::new();
    let store = r.store.path().join("new");
    let mut pty = Pty::spawn(&store, &["wizard"]);
    pty.wait_for("step 1 of 5");
    pty.send("n");
    pty.wait_for("New organization");
    pty.send(&format!("contoso\r{TENANT}\r\r{}\r", fake.url));
    pty.wait_for("Signing in to tenant");
    pty.wait_for("enter the code FAKE-");
    pty.wait_for("live, tenant");
    pty.send("\r");
    pty.wait_for("61 of 61 shown");
    pty.send("q");
    assert!(pty.child.wait().unwrap().success());
    // The org is saved as `org add --tenant` saves it, its token cached (0600), no secret.
    let orgs = r.run_with(&["--store", store.to_str().unwrap(), "org", "list"], &[]);
    assert!(orgs.1.contains("contoso"), "{orgs:?}");
    assert!(store.join("tokens/contoso.json").exists());
}

/// Colours only without `NO_COLOR`; a smaller window is redrawn to its size (80×24).
#[test]
fn colours_follow_no_color_and_a_resize_redraws() {
    let r = Roster::new();
    r.add_demo("contoso", &fixtures().join("demo/tenant.json"));
    for no_color in [false, true] {
        let mut pty = Pty::spawn_with(r.store.path(), &["wizard"], no_color);
        pty.wait_for("step 1 of 5");
        // Any foreground colour set (SGR 38;5;N: the title's cyan, the hints' grey).
        let coloured = pty.raw().contains("\u{1b}[38;5;");
        assert_eq!(coloured, !no_color, "colour with NO_COLOR={no_color}");
        if no_color {
            pty.resize(24, 80);
            // Redrawn at the new size: the key hints on the 24th line, nothing past column 80.
            let until = Instant::now() + Duration::from_secs(30);
            loop {
                let screen = pty.screen();
                let lines: Vec<&str> = screen.lines().collect();
                if lines.get(23).is_some_and(|l| l.contains("q quit"))
                    && lines.iter().all(|l| l.chars().count() <= 80)
                {
                    break;
                }
                assert!(Instant::now() < until, "not redrawn at 80x24:\n{screen}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        pty.send("q");
        assert!(pty.child.wait().unwrap().success());
    }
}

/// A long command on a terminal names the step it is at (reading, planning, applying) on a
/// spinner that is gone when it ends; through a pipe, no progress is written at all.
#[test]
fn progress_names_each_step_on_a_terminal_only() {
    let r = Roster::new();
    let dir = tempfile::tempdir().unwrap();
    let tenant = dir.path().join("big.json");
    r.expect(
        0,
        &[
            "fixture",
            "generate",
            "--users",
            "20000",
            "--groups",
            "200",
            "--out",
            tenant.to_str().unwrap(),
        ],
    );
    r.expect(
        0,
        &["org", "add", "big", "--fixture", tenant.to_str().unwrap()],
    );
    let mut pty = Pty::spawn(r.store.path(), &["plan", "big", "--select-all", "--json"]);
    assert!(pty.child.wait().unwrap().success());
    std::thread::sleep(Duration::from_millis(200));
    let raw = pty.raw();
    assert!(
        ["reading the tenant", "planning 20", "recording the plan"]
            .iter()
            .any(|step| raw.contains(step)),
        "no step shown:\n{}",
        &raw[..raw.len().min(2000)]
    );
    // The spinner is cleared: the screen ends with the output, not a step.
    let screen = pty.screen();
    assert!(!screen.contains("planning 20"), "{screen}");

    let (code, _, err) = r.run(&["plan", "big", "--select-all", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.is_empty(), "progress written to a pipe: {err}");
}

/// A device-code sign-in needed while a run reads the tenant: the spinner is taken off the
/// screen first, so the prompt stands whole on its own line.
#[test]
fn a_device_code_prompt_is_not_mixed_with_the_spinner() {
    let fake = Fake::start(
        &fixtures().join("demo/tenant.json"),
        &["--approve-after", "3"],
    );
    let r = Roster::new();
    r.expect(
        0,
        &[
            "org",
            "add",
            "live",
            "--tenant",
            TENANT,
            "--graph-url",
            &fake.url,
            "--login-url",
            &fake.url,
        ],
    );
    r.expect(0, &["org", "logout", "live"]);
    let mut pty = Pty::spawn(r.store.path(), &["plan", "live", "--select-all"]);
    pty.wait_for("enter the code FAKE-");
    assert!(pty.child.wait().unwrap().success());
    let screen = pty.screen();
    let prompt = screen
        .lines()
        .find(|l| l.contains("enter the code FAKE-"))
        .unwrap();
    assert!(
        prompt.starts_with("To sign in, open ") && !prompt.contains("reading"),
        "{screen}"
    );
}

/// On a terminal of 100 columns, every table fits (long cells wrapped, ids left out of the
/// search and deleted tables unless `--wide`, a run id never cut), and so does `--help`.
#[test]
fn tables_and_help_fit_a_100_column_terminal() {
    use unicode_width::UnicodeWidthStr;
    let r = Roster::new();
    r.add_demo("contoso", &fixtures().join("demo/tenant.json"));
    r.run(&IMPORT);
    let run = json(&r, &["runs", "--json"])[0]["run"]
        .as_str()
        .unwrap()
        .to_owned();
    for args in [
        vec!["report", "last"],
        vec!["runs"],
        vec!["search", "contoso"],
        vec!["deleted", "last"],
        vec!["import", "--help"],
    ] {
        let pty = Pty::spawn(r.store.path(), &args);
        let mut pty = pty;
        assert!(pty.child.wait().unwrap().success(), "{args:?}");
        std::thread::sleep(Duration::from_millis(200));
        let raw = pty.raw();
        let text = strip_escapes(&raw);
        // A carriage return draws over the line (the spinner): each part is measured.
        for line in text.lines().flat_map(|l| l.split('\r')) {
            assert!(
                line.width() <= 100,
                "{args:?}: a line of {} columns:\n{line}",
                line.width()
            );
        }
        match args[0] {
            // The run by its short name: a prefix of its id that names it.
            "runs" => assert!(text.contains(&run[..11]), "{text}"),
            "search" | "deleted" => {
                assert!(text.contains("with --wide or --json"), "{text}");
                assert!(
                    !text.contains("6ea91a8d-e32e-41a1-b7bd-d2d185eed0e0"),
                    "{text}"
                );
            }
            // Only what needs attention, and how to see the rest.
            "report" => {
                assert!(text.contains("Summary:"), "{text}");
                assert!(
                    text.contains("65 of 66 entries shown (1 unchanged or ignored); every one:"),
                    "{text}"
                );
                assert!(!text.contains("already up to date"), "{text}");
            }
            _ => {}
        }
        pty.child.kill().ok();
    }
    // --wide keeps the ids; a pipe gets every column, unwrapped.
    let wide = Pty::spawn(r.store.path(), &["--wide", "search", "contoso", "Adams"]);
    let mut wide = wide;
    assert!(wide.child.wait().unwrap().success());
    std::thread::sleep(Duration::from_millis(200));
    assert!(wide.raw().contains("6ea91a8d-e32e-41a1-b7bd-d2d185eed0e0"));
    let piped = r.expect(0, &["search", "contoso"]);
    assert!(piped.contains("6ea91a8d-e32e-41a1-b7bd-d2d185eed0e0"));
    assert!(
        piped.lines().any(|l| l.width() > 100),
        "a pipe is not fitted"
    );
}

/// What a terminal shows of `s`: escape sequences (CSI, OSC) left out.
fn strip_escapes(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('[') => {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            Some(']') => {
                while let Some(c) = chars.next() {
                    if c == '\u{7}' || (c == '\u{1b}' && chars.peek() == Some(&'\\')) {
                        chars.next();
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// `roster runs` on an 80-column terminal: one row per run, newest first, nothing cut inside a
/// word (no "complet/ed"), each run by a short name that `report` takes; `--last N` keeps the
/// newest N.
#[test]
fn runs_fit_80_columns_newest_first_with_short_names() {
    let r = Roster::new();
    let (_dir, tenant) = common::demo_tenant_copy();
    r.add_demo("contoso", &tenant);
    for _ in 0..3 {
        r.run(&["import", "contoso", "--select-all", "--check-deleted"]);
    }
    let all = json(&r, &["runs", "--json"]);
    let ids: Vec<String> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["run"].as_str().unwrap().to_owned())
        .collect();
    assert!(ids.len() >= 3);

    let mut pty = Pty::spawn_sized(r.store.path(), &["runs", "--last", "2"], true, (24, 80));
    assert!(pty.child.wait().unwrap().success());
    std::thread::sleep(Duration::from_millis(200));
    let raw = pty.raw();
    let lines: Vec<&str> = raw.lines().map(|l| l.trim_end_matches('\r')).collect();
    for line in &lines {
        assert!(
            unicode_width::UnicodeWidthStr::width(*line) <= 80,
            "wider than 80 columns: {line}\n{raw}"
        );
    }
    let rows: Vec<&&str> = lines.iter().filter(|l| l.contains("completed")).collect();
    assert_eq!(rows.len(), 2, "the newest two:\n{raw}");
    // Newest first, each by a short name that names it.
    for (row, id) in rows.iter().zip(ids.iter().rev()) {
        let name = row
            .trim_start_matches(['│', ' '])
            .split([' ', '│'])
            .next()
            .unwrap();
        assert!(
            name.len() < id.len() && id.starts_with(name),
            "{name} for {id}\n{raw}"
        );
        let report = json(&r, &["report", name, "--json"]);
        assert_eq!(report["run"], id.as_str());
    }
}
