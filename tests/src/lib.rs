//! Helpers for the end-to-end tests: the real `refinery` binary, the shared corpora, a second
//! Parquet reader, and a real S3-compatible server (moto) on 127.0.0.1.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// The `refinery` binary: `$REFINERY_BIN`, else the one beside this test binary's folder.
pub fn refinery_bin() -> PathBuf {
    if let Ok(p) = std::env::var("REFINERY_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test binary path");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("target folder")
        .join("refinery");
    assert!(
        bin.exists(),
        "{} not found: build it first (cargo build -p pipeline --bin refinery)",
        bin.display()
    );
    bin
}

/// A `refinery` command with logs in plain text.
pub fn refinery(args: &[&str]) -> Command {
    let mut cmd = Command::new(refinery_bin());
    cmd.args(args).env_remove("REFINERY_LOG");
    cmd
}

/// Runs `refinery` and returns its output.
pub fn run(args: &[&str]) -> Output {
    refinery(args).output().expect("refinery runs")
}

/// stderr and stdout of an output, as text.
pub fn texts(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `refinery query --format csv --dir OUT SQL`, asserting success; returns the CSV
/// (header first) without its final newline.
pub fn query_csv(out: &Path, sql: &str) -> String {
    let o = run(&["query", "--format", "csv", "--dir", path_str(out), sql]);
    let (stdout, stderr) = texts(&o);
    assert!(o.status.success(), "{sql}: {stderr}");
    stdout.trim_end().to_string()
}

/// `refinery query --format json` arguments with every table a lineage report (JSON) lists as
/// a `--table NAME=LOCATION`, ready for the SQL to be pushed.
pub fn report_query_args(report: &serde_json::Value) -> Vec<String> {
    let mut args: Vec<String> = vec!["query".into(), "--format".into(), "json".into()];
    for (name, location) in report["tables"].as_object().expect("report tables") {
        let location = location.as_str().expect("table location");
        args.extend(["--table".into(), format!("{name}={location}")]);
    }
    args
}

/// The section `id` of a lineage report (JSON).
pub fn report_section<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["sections"]
        .as_array()
        .expect("report sections")
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("the report has a section `{id}`"))
}

/// The first row of [`query_csv`]'s result, each field parsed as `T`.
pub fn query_row<T: std::str::FromStr>(out: &Path, sql: &str) -> Vec<T>
where
    T::Err: std::fmt::Debug,
{
    let csv = query_csv(out, sql);
    let row = csv
        .lines()
        .nth(1)
        .unwrap_or_else(|| panic!("no row: {sql}"));
    row.split(',')
        .map(|v| v.parse().unwrap_or_else(|e| panic!("{v}: {e:?}")))
        .collect()
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// The first `n` records of a corpus file (`.jsonl.zst`), as JSON values.
pub fn corpus_records(name: &str, n: usize) -> Vec<serde_json::Value> {
    use std::io::BufRead;
    let file = std::fs::File::open(corpus(name)).expect("corpus file");
    let reader = std::io::BufReader::new(zstd::Decoder::new(file).expect("zstd"));
    reader
        .lines()
        .take(n)
        .map(|l| serde_json::from_str(&l.expect("line")).expect("json"))
        .collect()
}

/// `../shared/data` beside the project.
pub fn shared_data() -> PathBuf {
    // Read at run time: a test binary reused from a clone elsewhere must not look there.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("run under cargo test");
    let p = Path::new(&manifest_dir).join("../../shared/data");
    assert!(p.exists(), "shared data not found at {}", p.display());
    p
}

/// A corpus file of the shared data.
pub fn corpus(name: &str) -> PathBuf {
    shared_data().join("corpus").join(name)
}

/// A fresh scratch folder named after the test.
pub fn scratch(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("refinery-{name}-"))
        .tempdir()
        .expect("temp dir")
}

/// Every batch of a Parquet file or of all `.parquet` files in a folder (sorted), read by the
/// `parquet` crate's synchronous reader, independent of the DataFusion path Refinery uses.
pub fn read_parquet(path: &Path) -> Vec<RecordBatch> {
    let files: Vec<PathBuf> = if path.is_dir() {
        let mut f: Vec<PathBuf> = std::fs::read_dir(path)
            .expect("dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
            .collect();
        f.sort();
        f
    } else {
        vec![path.to_path_buf()]
    };
    files
        .iter()
        .flat_map(|f| {
            let reader =
                ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(f).expect("open"))
                    .expect("parquet")
                    .build()
                    .expect("reader");
            reader.map(|b| b.expect("batch")).collect::<Vec<_>>()
        })
        .collect()
}

/// All values of a string column across batches.
pub fn strings(batches: &[RecordBatch], column: &str) -> Vec<String> {
    use arrow::array::AsArray;
    batches
        .iter()
        .flat_map(|b| {
            b.column_by_name(column)
                .expect("column")
                .as_string::<i32>()
                .iter()
                .map(|v| v.unwrap_or_default().to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Every file under `dir` with its bytes, by relative path (for byte-identity checks), leaving
/// out `runs/`: the lineage table of invocations, the one output that records when.
pub fn tree_bytes(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for e in std::fs::read_dir(dir).expect("dir") {
            let p = e.expect("entry").path();
            if p.is_dir() && p.strip_prefix(base).is_ok_and(|r| r == Path::new("runs")) {
                continue;
            }
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push((
                    p.strip_prefix(base).expect("prefix").display().to_string(),
                    std::fs::read(&p).expect("read"),
                ));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// The run manifest of an output folder.
pub fn manifest(out: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(out.join("_manifest.json")).expect("manifest"))
        .expect("json")
}

/// The Python interpreter with numpy, pyarrow and tokenizers (`REFINERY_TEST_PYTHON`, else
/// `python3`; `scripts/test` installs the packages).
pub fn python() -> Command {
    Command::new(std::env::var("REFINERY_TEST_PYTHON").unwrap_or_else(|_| "python3".into()))
}

/// A file of the tests crate (`tests/...`).
pub fn own_file(rel: &str) -> PathBuf {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("run under cargo test");
    Path::new(&manifest_dir).join(rel)
}

/// Writes records as JSONL.
pub fn write_jsonl(path: &Path, records: &[serde_json::Value]) {
    let text: String = records.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(path, text).expect("write JSONL");
}

/// moto answers unsigned reads with 403 but does not check signatures: any well-formed
/// `Authorization` header lets the helpers read what the signed client wrote.
const MOTO_AUTH: &str = "Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0";

/// A moto S3 server on 127.0.0.1, stopped on drop. Panics (fails the test) when moto is missing.
pub struct S3Server {
    child: Child,
    /// The endpoint URL.
    pub endpoint: String,
    port: u16,
}

impl S3Server {
    /// Starts a server on a free port and waits until it answers.
    pub fn start() -> S3Server {
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("free port")
            .local_addr()
            .expect("addr")
            .port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server must be installed (pip install 'moto[server]'); scripts/test installs it");
        let server = S3Server {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while server.request("GET", "/", &[]).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto_server did not answer on port {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    /// One HTTP/1.1 request; returns the status code.
    pub fn request(&self, method: &str, path: &str, body: &[u8]) -> std::io::Result<u16> {
        self.exchange(method, path, body).map(|r| r.0)
    }

    /// One HTTP/1.1 request; returns the status code and the response body.
    pub fn exchange(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> std::io::Result<(u16, Vec<u8>)> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\n{MOTO_AUTH}\r\nConnection: close\r\n\r\n",
            self.port,
            body.len()
        );
        s.write_all(head.as_bytes())?;
        s.write_all(body)?;
        let mut response = Vec::new();
        let _ = s.read_to_end(&mut response);
        let split = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| std::io::Error::other("no response head"))?;
        let head = String::from_utf8_lossy(&response[..split]).into_owned();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| std::io::Error::other("no status"))?;
        Ok((status, response[split + 4..].to_vec()))
    }

    /// An object's bytes (panics unless it exists).
    pub fn get(&self, bucket: &str, key: &str) -> Vec<u8> {
        let (status, body) = self
            .exchange("GET", &format!("/{bucket}/{key}"), &[])
            .expect("get");
        assert_eq!(status, 200, "GET {bucket}/{key}");
        body
    }

    /// The keys under `prefix` in `bucket` (one listing page, up to 1,000 keys).
    pub fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let (_, body) = self
            .exchange("GET", &format!("/{bucket}?prefix={prefix}"), &[])
            .expect("list");
        String::from_utf8_lossy(&body)
            .split("<Key>")
            .skip(1)
            .filter_map(|s| s.split("</Key>").next())
            .map(str::to_string)
            .collect()
    }

    /// Freezes the server process (SIGSTOP): it holds connections but answers nothing.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a paused server go on (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Creates a bucket.
    pub fn create_bucket(&self, bucket: &str) {
        assert_eq!(
            self.request("PUT", &format!("/{bucket}"), &[])
                .expect("create bucket"),
            200
        );
    }

    /// Uploads an object.
    pub fn put(&self, bucket: &str, key: &str, body: &[u8]) {
        assert_eq!(
            self.request("PUT", &format!("/{bucket}/{key}"), body)
                .expect("put"),
            200
        );
    }

    /// Environment for a client of this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT", self.endpoint.clone()),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
