//! The bench's command line.

pub(crate) struct Options {
    pub(crate) goru: String,
    pub(crate) daemon: String,
    pub(crate) runs: usize,
    /// The sections to run, from [`SECTIONS`]; all when `None`.
    pub(crate) only: Option<Vec<String>>,
    /// Only the CPU-bound workloads whose name contains this text.
    pub(crate) workload: Option<String>,
}

/// The report's sections, in order, by the names `--only` takes.
const SECTIONS: &[&str] = &[
    "process",
    "engine",
    "daemon",
    "pool",
    "memory",
    "precision",
    "cpu",
];

const USAGE: &str =
    "goru-bench [--goru PATH] [--daemon PATH] [--runs N] [--only SECTION,...] [--workload TEXT]";

impl Options {
    pub(crate) fn wants(&self, section: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|only| only.iter().any(|name| name == section))
    }

    /// The command line's options; exits with a usage error on a bad one.
    pub(crate) fn parse() -> Options {
        let mut options = Options {
            goru: "target/release/goru".into(),
            daemon: "target/release/goru-daemon".into(),
            runs: 30,
            only: None,
            workload: None,
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--goru" => options.goru = args.next().expect("--goru needs a path"),
                "--daemon" => options.daemon = args.next().expect("--daemon needs a path"),
                "--runs" => {
                    options.runs = args
                        .next()
                        .and_then(|n| n.parse().ok())
                        .expect("--runs needs a number")
                }
                "--only" => {
                    let list = args
                        .next()
                        .unwrap_or_else(|| usage_error("`--only` needs a section"));
                    let names: Vec<String> = list.split(',').map(str::to_owned).collect();
                    if let Some(unknown) = names.iter().find(|n| !SECTIONS.contains(&n.as_str())) {
                        usage_error(&format!(
                            "unknown section `{unknown}` (sections: {})",
                            SECTIONS.join(", ")
                        ));
                    }
                    options.only = Some(names);
                }
                "--workload" => {
                    options.workload = Some(
                        args.next()
                            .unwrap_or_else(|| usage_error("`--workload` needs a text")),
                    )
                }
                other => usage_error(&format!("unknown argument `{other}`")),
            }
        }
        options
    }
}

pub(crate) fn usage_error(message: &str) -> ! {
    eprintln!("error: {message}\nhint: {USAGE}");
    std::process::exit(2);
}
