//! A throwaway PostgreSQL cluster for tests and benchmarks: `initdb` into a temporary
//! folder, `pg_ctl start` listening on a Unix socket in it only (no TCP), trust
//! authentication for its one user, removed (server stopped, folder deleted) when dropped.
//! The server binaries come from `$KSN_PG_BIN`, else `/usr/lib/postgresql/<version>/bin`
//! (newest first), else `PATH`; without them, an error naming the Debian package.
//!
//! PostgreSQL refuses to run as root: under root, the cluster runs as the `postgres` user
//! (or `nobody`), which owns its folder.

use std::{
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

pub const DEBIAN_PACKAGE: &str = "postgresql-15";

pub struct TempCluster {
    dir: PathBuf,
    bin: PathBuf,
    user: Option<(u32, u32)>,
}

fn find_bin() -> Result<PathBuf, String> {
    let has = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(dir) = std::env::var_os("KSN_PG_BIN").map(PathBuf::from) {
        return if has(&dir) {
            Ok(dir)
        } else {
            Err(format!(
                "KSN_PG_BIN={}: initdb and pg_ctl are not there (they come with the Debian \
                 package {DEBIAN_PACKAGE}: apt-get install -y {DEBIAN_PACKAGE})",
                dir.display()
            ))
        };
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|d| has(d))
        .collect();
    versions.sort_by_key(|d| {
        d.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    if let Some(dir) = versions.pop() {
        return Ok(dir);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .find(|d| has(d))
        .ok_or_else(|| {
            format!(
                "PostgreSQL's server binaries (initdb, pg_ctl) were not found in \
                 /usr/lib/postgresql/*/bin or on PATH: install the Debian package {DEBIAN_PACKAGE} \
                 (apt-get install -y {DEBIAN_PACKAGE}), or set KSN_PG_BIN to their folder"
            )
        })
}

/// The user a root process runs the server as: `postgres`, else `nobody`.
fn unprivileged() -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc_geteuid() } != 0 {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let find = |name: &str| {
        passwd.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 3 && f[0] == name)
                .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
                .flatten()
        })
    };
    find("postgres")
        .or_else(|| find("nobody"))
        .or(Some((65534, 65534)))
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

impl TempCluster {
    /// Creates and starts a cluster; `name` marks its folder.
    pub fn start(name: &str) -> Result<Self, String> {
        let bin = find_bin()?;
        let dir = std::env::temp_dir().join(format!("ksn-pg-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let user = unprivileged();
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                .map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let cluster = Self { dir, bin, user };
        cluster.run(
            "initdb",
            &[
                "-D",
                &cluster.data().to_string_lossy(),
                "-U",
                "ksn",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        )?;
        let options = format!(
            "-c listen_addresses='' -c unix_socket_directories='{}' -c max_connections=200 \
             -c shared_buffers=256MB -c max_wal_size=2GB",
            cluster.dir.display()
        );
        cluster.run(
            "pg_ctl",
            &[
                "-D",
                &cluster.data().to_string_lossy(),
                "-o",
                &options,
                "-l",
                &cluster.dir.join("server.log").to_string_lossy(),
                "-w",
                "start",
            ],
        )?;
        Ok(cluster)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn run(&self, program: &str, args: &[&str]) -> Result<(), String> {
        let mut command = Command::new(self.bin.join(program));
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .current_dir(&self.dir);
        if let Some((uid, gid)) = self.user {
            command.uid(uid).gid(gid);
        }
        let out = command
            .output()
            .map_err(|e| format!("{}: {e}", self.bin.join(program).display()))?;
        if out.status.success() {
            Ok(())
        } else {
            let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
            Err(format!(
                "{program} failed: {}{}",
                String::from_utf8_lossy(&out.stderr).trim(),
                if log.is_empty() {
                    String::new()
                } else {
                    format!("\nserver log:\n{log}")
                }
            ))
        }
    }

    /// The URL of the cluster's `postgres` database, in schema `schema`.
    /// The cluster's folder, where its Unix socket is.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn url(&self, schema: &str) -> String {
        format!(
            "postgresql:///postgres?host={}&user=ksn&schema={schema}",
            self.dir.display()
        )
    }
}

impl Drop for TempCluster {
    fn drop(&mut self) {
        let _ = self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data().to_string_lossy(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
