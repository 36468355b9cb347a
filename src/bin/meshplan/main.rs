//! The `meshplan` command line. Exit codes are decided here, in one place.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use meshplan::findings::{self, Severity};
use meshplan::inventory::Inventory;
use meshplan::pipeline;
use meshplan::plan::{IstioVersion, PlanFile, StrategyKind};
use meshplan::report::{self, Format, text::Palette};
use meshplan::translate::{self, Options};

mod progress;
mod ramp;
mod run;

/// A plan of 10k objects allocates millions of small JSON values; mimalloc halves the time the
/// system allocator spends on them (README "Performance").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit codes, documented in the README's "Exit codes" table (a test keeps the two in step; the
/// ramp's 3 and 4 come from `meshplan::ramp::Outcome::exit_code`).
mod exit {
    pub const OK: u8 = 0;
    pub const ERROR: u8 = 1;
    pub const CHANGES: u8 = 2;
    pub const FINDINGS: u8 = 3;
    pub const INTERRUPTED: u8 = 130;
}

#[derive(Parser)]
#[command(
    name = "meshplan",
    version,
    about = "Plan and carry out the migration of EKS workloads from AWS App Mesh to Istio",
    after_help = "Examples:\n  meshplan plan plans/color.toml\n  \
                  meshplan apply plans/color.toml --dry-run\n  \
                  meshplan -vv apply plans/color.toml\n\n\
                  Exit codes: 0 success, 1 error, 2 changes present (--detailed-exitcode), \
                  3 findings at or above --fail-on or a ramp rolled back, 4 a ramp paused or \
                  holding, 130 interrupted (state saved). The README's \"Exit codes\" table \
                  says which command uses which."
)]
struct Cli {
    /// Never colour the output (also: NO_COLOR=1).
    #[arg(long, global = true)]
    no_color: bool,
    /// Log what meshplan does to stderr: -v steps, locks and gates; -vv also every request to
    /// the cluster (retries are logged always). RUST_LOG (e.g. `meshplan=debug`) overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show every change the migration makes, step by step, with a diff per object.
    #[command(after_help = "Examples:\n  meshplan plan plans/color.toml\n  \
                            meshplan plan plans/color.toml --format json\n  \
                            meshplan plan plans/color.toml --format markdown > comment.md\n  \
                            meshplan plan plans/color.toml --detailed-exitcode")]
    Plan {
        /// The plan file.
        plan: PathBuf,
        /// Override the plan's strategy.
        #[arg(long, value_enum)]
        strategy: Option<StrategyArg>,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// Exit 2 when the plan has changes, 0 when it has none.
        #[arg(long)]
        detailed_exitcode: bool,
        /// Read the cluster instead of `source.manifests` (plans without manifests always do).
        #[command(flatten)]
        cluster: ClusterArgs,
        /// Save the exact steps and what they were planned from, for `meshplan apply FILE`.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Write the migration as manifests to commit: one folder per stage, in order, with a README.
    #[command(
        after_help = "Examples:\n  meshplan render plans/color.toml --out deploy/color\n  \
                            meshplan render plans/color-parallel.toml --out deploy/color --format flux"
    )]
    Render {
        /// The plan file (its `source.manifests` are read; no cluster is contacted).
        plan: PathBuf,
        /// The folder to write (empty, new, or an earlier render, which is replaced).
        #[arg(long)]
        out: PathBuf,
        /// Plain manifests, or with Argo CD sync waves, or with Flux Kustomizations.
        #[arg(long, value_enum, default_value = "plain")]
        format: meshplan::render::RenderFormat,
        /// Override the plan's strategy.
        #[arg(long, value_enum)]
        strategy: Option<StrategyArg>,
    },
    /// Check the live traffic split: send GET requests, count the answers per backend, and
    /// compare with the plan's weights by a chi-square test. Exit 0 when it matches, 1 when not.
    #[command(
        after_help = "Examples:\n  meshplan verify plans/color.toml --url http://color.example.com/\n  \
                            meshplan verify plans/color.toml --requests 2000 --significance 0.001"
    )]
    Verify {
        /// The plan file (its `[verify]` section says how backends are told apart).
        plan: PathBuf,
        /// The URL to request (default: `[verify] url`).
        #[arg(long)]
        url: Option<String>,
        /// Requests to send (default: `[verify] requests`, 200).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        requests: Option<u32>,
        /// Fail when the p-value is below this (default: `[verify] significance`, 0.01).
        #[arg(long, value_name = "A")]
        significance: Option<f64>,
        /// Time limit of one request, e.g. 2s (default: `[verify] timeout`).
        #[arg(long, value_name = "D")]
        timeout: Option<meshplan::plan::Duration>,
    },
    /// Check a plan file: syntax, types and meaning. Exit 0 when valid, 1 when not.
    #[command(after_help = "Example:\n  meshplan validate plans/color.toml")]
    Validate {
        /// The plan file.
        plan: PathBuf,
    },
    /// Print the JSON Schema of the plan file.
    #[command(after_help = "Example:\n  meshplan schema > schema/meshplan.schema.json")]
    Schema,
    /// Translate App Mesh manifests to Istio objects, without a plan.
    #[command(
        after_help = "Examples:\n  meshplan translate -f examples/howto-k8s-http2\n  \
                            meshplan translate -f app.yaml -o json --fail-on warning\n  \
                            meshplan translate -f app.yaml --format markdown > comment.md"
    )]
    Translate {
        /// YAML files or folders holding App Mesh objects.
        #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
        files: Vec<PathBuf>,
        /// Output format: Istio objects as YAML (findings on stderr), JSON with both, or Markdown
        /// for a pull-request comment (findings, a collapsible block per object).
        #[arg(
            short = 'o',
            long = "output",
            alias = "format",
            value_enum,
            default_value = "yaml"
        )]
        output: TranslateOutput,
        /// Exit 3 when a finding is at least this severe.
        #[arg(long, value_enum, default_value = "error")]
        fail_on: FailOn,
        /// Target Istio release (decides the API versions).
        #[arg(long, default_value = "1.27")]
        istio_version: IstioVersion,
    },
    /// Carry out the migration against the cluster, step by step, with checkpoints.
    #[command(after_help = "Examples:\n  meshplan apply plans/color.toml\n  \
                            meshplan plan plans/color.toml --context prod --out color.plan.json && meshplan apply color.plan.json\n  \
                            meshplan apply plans/color.toml --context prod --auto-approve\n  \
                            meshplan apply plans/color.toml --dry-run\n\n\
                            Run it again after an interruption or a failure: it resumes where it stopped.")]
    Apply {
        /// The plan file, or a plan saved with `meshplan plan --out`.
        plan: PathBuf,
        #[command(flatten)]
        cluster: ClusterArgs,
        /// Do not ask for confirmation (required when stdin is not a terminal).
        #[arg(long)]
        auto_approve: bool,
        /// Steps run at once.
        #[arg(long, default_value_t = meshplan::engine::DEFAULT_CONCURRENCY,
              value_parser = clap::value_parser!(u16).range(1..=64))]
        concurrency: u16,
        /// Roll back automatically when a step fails.
        #[arg(long)]
        rollback_on_failure: bool,
        /// Run the whole migration against an in-process simulated cluster loaded with the
        /// plan's source manifests, instead of a real one.
        #[arg(long, conflicts_with_all = ["kubeconfig", "context"])]
        rehearse: bool,
        /// Show what apply would do (server-side dry runs included) and change nothing: no lock,
        /// no journal, no write.
        #[arg(long, conflicts_with_all = ["rehearse", "auto_approve", "rollback_on_failure"])]
        dry_run: bool,
    },
    /// Undo what `apply` did, newest step first, restoring every object as it was.
    #[command(after_help = "Examples:\n  meshplan rollback plans/color.toml\n  \
                            meshplan rollback plans/color.toml --to routing\n  \
                            meshplan rollback plans/color.toml --dry-run")]
    Rollback {
        /// The plan file.
        plan: PathBuf,
        #[command(flatten)]
        cluster: ClusterArgs,
        /// Undo only the steps after this one (it stays applied).
        #[arg(long, value_name = "STEP")]
        to: Option<String>,
        /// Do not ask for confirmation (required when stdin is not a terminal).
        #[arg(long)]
        auto_approve: bool,
        /// Also delete the Istio EKS add-on, when meshplan created it.
        #[arg(long)]
        include_addon: bool,
        /// Show what rollback would undo and change nothing: no lock, no journal, no write.
        #[arg(long, conflicts_with = "auto_approve")]
        dry_run: bool,
    },
    /// Show the steps of the current run: state, timing, errors, and who holds the lock.
    #[command(after_help = "Examples:\n  meshplan status plans/color.toml\n  \
                      meshplan status plans/color.toml --format json\n  \
                      meshplan status plans/color.toml --format markdown > comment.md")]
    Status {
        /// The plan file.
        plan: PathBuf,
        /// Where a `configmap` state backend lives (unused with the file backend).
        #[command(flatten)]
        cluster: ClusterArgs,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Clear the lock of a run that died, naming its id (shown by `status` and by the refusal).
    #[command(after_help = "Example:\n  meshplan unlock plans/color.toml --force 1a2b3c4d00001234")]
    Unlock {
        /// The plan file.
        plan: PathBuf,
        /// Where a `configmap` state backend lives (unused with the file backend).
        #[command(flatten)]
        cluster: ClusterArgs,
        /// The id of the run whose lock is cleared.
        #[arg(long, value_name = "ID")]
        force: String,
    },
    /// Move traffic one step along the ramp of a parallel-namespace migration: one idempotent tick
    /// (bake, evaluate the gates, advance, hold, roll back or pause), or an operator's command.
    #[command(
        after_help = "Examples:\n  meshplan ramp plans/color-parallel.toml\n  \
                            meshplan ramp plans/color-parallel.toml --watch\n  \
                            meshplan ramp plans/color-parallel.toml --resume\n  \
                            meshplan ramp plans/color-parallel.toml --dry-run --format markdown\n\n\
                            Exit codes: 0 on track (advanced, waiting, complete), 1 error, \
                            3 rolled back, 4 paused or holding after a failed check; with \
                            --dry-run, the code the tick would return."
    )]
    Ramp {
        /// The plan file.
        plan: PathBuf,
        #[command(flatten)]
        cluster: ClusterArgs,
        #[command(flatten)]
        control: RampControl,
        /// Delete the source namespace when the ramp completes (also needs
        /// `cleanup.delete_source_namespace = true`).
        #[arg(long)]
        allow_delete: bool,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// Show what this tick would do (the gates are queried, the weight change is dry-run by
        /// the server) and change nothing: no lock, no state, no weight written.
        #[arg(long, conflicts_with = "watch")]
        dry_run: bool,
    },
    /// Print a CronJob, its RBAC and a ConfigMap with the plan, which run `meshplan ramp` in the
    /// cluster on a schedule (the plan must keep its state in the cluster).
    #[command(after_help = "Example:\n  meshplan cronjob plans/color-parallel.toml \
                            --image registry.example.com/meshplan:0.1.0 | kubectl apply -f -")]
    Cronjob {
        /// The plan file.
        plan: PathBuf,
        /// The meshplan container image (see the Dockerfile).
        #[arg(long)]
        image: String,
        /// When to tick, in cron syntax.
        #[arg(long, default_value = "*/5 * * * *")]
        schedule: String,
        /// Namespace of the CronJob, its ServiceAccount and the plan's ConfigMap (default: the
        /// plan's `state.namespace`).
        #[arg(long)]
        namespace: Option<String>,
    },
    /// Explain a finding code: what it means, which fields raise it, what to do.
    #[command(after_help = "Examples:\n  meshplan explain MP201\n  meshplan explain mp309")]
    Explain {
        /// The code, e.g. MP201.
        code: String,
    },
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  meshplan completions bash > /etc/bash_completion.d/meshplan\n  \
                            meshplan completions zsh > \"${fpath[1]}/_meshplan\"\n  \
                            meshplan completions fish > ~/.config/fish/completions/meshplan.fish"
    )]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page of meshplan (roff), or write one page per command into a folder.
    #[command(after_help = "Examples:\n  meshplan man | man -l -\n  \
                            meshplan man --out /usr/local/share/man/man1")]
    Man {
        /// Write meshplan.1 and meshplan-COMMAND.1 for every command into this folder.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

/// What `ramp` does instead of one tick.
#[derive(clap::Args)]
#[group(multiple = false)]
struct RampControl {
    /// Tick until the ramp completes, rolls back or pauses, waiting out each bake interval.
    #[arg(long)]
    watch: bool,
    /// Hold the ramp where it is.
    #[arg(long)]
    pause: bool,
    /// Carry on after a pause, rollback or abort, taking the live weight as it is.
    #[arg(long)]
    resume: bool,
    /// Send all traffic to the new side now and finalize (recorded).
    #[arg(long)]
    promote: bool,
    /// Send all traffic back to the old side now (recorded).
    #[arg(long)]
    abort: bool,
}

impl RampControl {
    fn command(&self) -> meshplan::ramp::Command {
        use meshplan::ramp::Command;
        match self {
            RampControl { pause: true, .. } => Command::Pause,
            RampControl { resume: true, .. } => Command::Resume,
            RampControl { promote: true, .. } => Command::Promote,
            RampControl { abort: true, .. } => Command::Abort,
            _ => Command::Tick,
        }
    }
}

/// Which cluster to talk to.
#[derive(clap::Args)]
struct ClusterArgs {
    /// Kubeconfig file (default: the plan's `source.kubeconfig`, `$KUBECONFIG`, `~/.kube/config`).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: the plan's `source.context`, or the current context).
    #[arg(long)]
    context: Option<String>,
    /// Use the pod's service account, ignoring kubeconfigs (how the CronJob runs).
    #[arg(long, conflicts_with_all = ["kubeconfig", "context"])]
    in_cluster: bool,
    /// The EKS cluster of the Istio add-on (default: the plan's `source.eks`, or the EKS ARN of
    /// the kubeconfig context).
    #[arg(long, value_name = "NAME", requires = "region")]
    eks_cluster: Option<String>,
    /// AWS region of `--eks-cluster`.
    #[arg(long, requires = "eks_cluster")]
    region: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum StrategyArg {
    InPlace,
    ParallelNamespace,
}

impl From<StrategyArg> for StrategyKind {
    fn from(arg: StrategyArg) -> Self {
        match arg {
            StrategyArg::InPlace => StrategyKind::InPlace,
            StrategyArg::ParallelNamespace => StrategyKind::ParallelNamespace,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum TranslateOutput {
    Yaml,
    Json,
    Markdown,
}

#[derive(Clone, Copy, ValueEnum)]
enum FailOn {
    Error,
    Warning,
    None,
}

impl FailOn {
    fn threshold(self) -> Option<Severity> {
        match self {
            FailOn::Error => Some(Severity::Error),
            FailOn::Warning => Some(Severity::Warning),
            FailOn::None => None,
        }
    }
}

/// Whether stdout and stderr get colour.
struct Colors {
    stdout: bool,
    stderr: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let no_color = cli.no_color || std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let colors = Colors {
        stdout: !no_color && std::io::stdout().is_terminal(),
        stderr: !no_color && std::io::stderr().is_terminal(),
    };
    init_tracing(cli.verbose, colors.stderr);
    let code = match run(cli.command, &colors) {
        Ok(code) => code,
        Err(err) => {
            eprint!("{}", report::diagnostic(err.as_ref(), colors.stderr));
            exit::ERROR
        }
    };
    ExitCode::from(code)
}

/// Logs to stderr: `RUST_LOG` when set, else meshplan's events at info (-v) or debug with kube's
/// requests (-vv); without either, only warnings (a request retried after a backoff), so a wait
/// for a retry is never silent.
fn init_tracing(verbose: u8, color: bool) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(filter) if !filter.trim().is_empty() => filter,
        _ => match verbose {
            0 => "meshplan=warn".to_owned(),
            1 => "meshplan=info".to_owned(),
            _ => "meshplan=debug,kube=debug,kube_client=debug".to_owned(),
        },
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(color)
        .init();
}

/// An error as the CLI reports it.
type Failure = Box<dyn miette::Diagnostic + Send + Sync>;

fn run(command: Command, colors: &Colors) -> Result<u8, Failure> {
    match command {
        Command::Plan {
            plan,
            strategy,
            format,
            detailed_exitcode,
            cluster,
            out,
        } => {
            let plan = PlanFile::load(&plan).map_err(boxed)?;
            let live = plan.spec.source.manifests.is_empty()
                || cluster.kubeconfig.is_some()
                || cluster.context.is_some();
            if out.is_some() && !live {
                return Err(boxed(meshplan::Error::Unsupported(
                    "a saved plan records the cluster's objects: plan against the cluster \
                     (--kubeconfig or --context) to save one"
                        .to_owned(),
                )));
            }
            let (planned, rendered) = if live {
                run::plan_live(plan, &cluster, strategy.map(Into::into))?
            } else {
                let eks = run::eks_cluster(&plan, &cluster);
                let mut planned =
                    pipeline::plan_offline(plan, strategy.map(Into::into)).map_err(boxed)?;
                // Offline, the add-on is shown as the plan asks for it, on the cluster known.
                if let (Some(None), Some(eks)) = (planned.graph.addon_cluster(), eks) {
                    planned.graph.bind_eks(&eks);
                }
                (planned, Vec::new())
            };
            if let Some(out) = &out {
                let saved = meshplan::saved::SavedPlan::new(
                    &planned.plan.path,
                    planned.plan.text(),
                    &planned.graph,
                    &planned.inventory,
                );
                let text = serde_json::to_string_pretty(&saved).expect("saved plans serialise");
                meshplan::state::write_atomic(out, text.as_bytes())
                    .map_err(|e| boxed(meshplan::Error::State(e)))?;
                eprintln!(
                    "Saved the plan to {}; `meshplan apply {}` applies exactly it.",
                    out.display(),
                    out.display()
                );
            }
            match format {
                Format::Text => stream(|out| {
                    report::text::write_plan(out, &planned, Palette::new(colors.stdout), &rendered)
                }),
                Format::Json => print(&report::json::plan(&planned)),
                Format::Markdown => print(&report::markdown::plan(&planned)),
            }
            let blocking: Vec<_> = planned
                .translation
                .findings
                .iter()
                .filter(|f| f.severity == Severity::Error)
                .cloned()
                .collect();
            let errors = blocking.len();
            let changes = !planned.graph.summary().is_empty();
            // The process ends next: freeing every object one by one would cost a tenth of
            // the run on a large mesh, for memory the OS takes back at once.
            std::mem::forget(planned);
            if errors > 0 {
                // Repeated on stderr, next to the refusal, where a pipeline's log shows them.
                let mut text = String::new();
                report::text::findings(&mut text, &blocking, Palette::new(colors.stderr));
                eprint!("{text}");
                eprintln!(
                    "error: {errors} finding(s) of severity error: the plan cannot be applied \
                     until they are resolved"
                );
                return Ok(exit::ERROR);
            }
            Ok(if detailed_exitcode && changes {
                exit::CHANGES
            } else {
                exit::OK
            })
        }
        Command::Render {
            plan,
            out,
            format,
            strategy,
        } => {
            let plan = PlanFile::load(&plan).map_err(boxed)?;
            let planned = pipeline::plan_offline(plan, strategy.map(Into::into)).map_err(boxed)?;
            let errors = planned
                .translation
                .findings
                .iter()
                .filter(|f| f.severity == Severity::Error)
                .count();
            if errors > 0 {
                // Manifests in Git get applied; a plan that must not be applied is not rendered.
                let mut text = String::new();
                report::text::findings(
                    &mut text,
                    &planned.translation.findings,
                    Palette::new(colors.stderr),
                );
                eprint!("{text}");
                eprintln!(
                    "error: {errors} finding(s) of severity error: nothing rendered until they \
                     are resolved"
                );
                return Ok(exit::ERROR);
            }
            let rendered = meshplan::render::render(&planned, format);
            meshplan::render::write(&rendered, &out)
                .map_err(|e| boxed(meshplan::Error::Render(e)))?;
            eprintln!(
                "Rendered {} stages ({} files) into {}; {} lists the order and the commands \
                 manifests cannot express.",
                rendered.stages.len(),
                rendered.files.len(),
                out.display(),
                out.join("README.md").display()
            );
            Ok(exit::OK)
        }
        Command::Verify {
            plan,
            url,
            requests,
            significance,
            timeout,
        } => verify(&plan, url, requests, significance, timeout),
        Command::Validate { plan } => {
            let plan = PlanFile::load(&plan).map_err(boxed)?;
            println!("{}: valid plan \"{}\"", plan.path.display(), plan.name);
            Ok(exit::OK)
        }
        Command::Schema => {
            print(&meshplan::plan::json_schema());
            Ok(exit::OK)
        }
        Command::Translate {
            files,
            output,
            fail_on,
            istio_version,
        } => translate_files(&files, output, fail_on, istio_version, colors),
        Command::Apply {
            plan,
            cluster,
            auto_approve,
            concurrency,
            rollback_on_failure,
            rehearse,
            dry_run,
        } => run::apply(
            &plan,
            &cluster,
            run::Approval {
                auto_approve,
                rollback_on_failure,
                dry_run,
            },
            concurrency.into(),
            rehearse,
            colors,
        ),
        Command::Rollback {
            plan,
            cluster,
            to,
            auto_approve,
            include_addon,
            dry_run,
        } => run::rollback(
            &plan,
            &cluster,
            to.as_deref(),
            run::Approval {
                auto_approve,
                rollback_on_failure: false,
                dry_run,
            },
            include_addon,
        ),
        Command::Status {
            plan,
            cluster,
            format,
        } => run::status(&plan, &cluster, format),
        Command::Unlock {
            plan,
            cluster,
            force,
        } => run::unlock(&plan, &cluster, &force),
        Command::Ramp {
            plan,
            cluster,
            control,
            allow_delete,
            format,
            dry_run,
        } => ramp::ramp(
            &plan,
            &cluster,
            control.command(),
            ramp::Mode {
                watch: control.watch,
                dry_run,
            },
            allow_delete,
            format,
        ),
        Command::Cronjob {
            plan,
            image,
            schedule,
            namespace,
        } => ramp::cronjob(&plan, &image, &schedule, namespace.as_deref()),
        Command::Explain { code } => match findings::Code::parse(&code) {
            Some(code) => {
                print(&meshplan::docs::finding(code, &[]));
                Ok(exit::OK)
            }
            None => Err(Box::new(UnknownCode(code))),
        },
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "meshplan", &mut out);
            print(&String::from_utf8_lossy(&out));
            Ok(exit::OK)
        }
        Command::Man { out } => man(out.as_deref()),
    }
}

/// `meshplan man`: the top page on stdout, or every page into a folder.
fn man(out: Option<&std::path::Path>) -> Result<u8, Failure> {
    let io = |path: &std::path::Path| {
        let path = path.to_owned();
        move |source| {
            boxed(meshplan::Error::Io {
                path: path.clone(),
                source,
            })
        }
    };
    let Some(dir) = out else {
        let mut page = Vec::new();
        clap_mangen::Man::new(Cli::command())
            .render(&mut page)
            .map_err(io(std::path::Path::new("stdout")))?;
        print(&String::from_utf8_lossy(&page));
        return Ok(exit::OK);
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    clap_mangen::generate_to(Cli::command(), dir).map_err(io(dir))?;
    eprintln!("Wrote the man pages into {}.", dir.display());
    Ok(exit::OK)
}

fn verify(
    plan: &std::path::Path,
    url: Option<String>,
    requests: Option<u32>,
    significance: Option<f64>,
    timeout: Option<meshplan::plan::Duration>,
) -> Result<u8, Failure> {
    use meshplan::verify;
    let plan = PlanFile::load(plan).map_err(boxed)?;
    let section = plan.spec.verify.clone();
    let significance = significance
        .or(section.as_ref().map(|v| v.significance))
        .unwrap_or(0.01);
    if !(significance > 0.0 && significance < 1.0) {
        return Err(boxed(meshplan::Error::Unsupported(format!(
            "--significance {significance}: give a probability strictly between 0 and 1"
        ))));
    }
    let settings = verify::settings(section.as_ref(), url, requests, timeout.map(|t| t.0))
        .map_err(|e| boxed(e.into()))?;
    let service = verify::service(&plan).map_err(|e| boxed(e.into()))?;
    // Weights the plan states need no translation, so plans that read a cluster work too.
    let weights = match verify::plan_weights(&plan, &service) {
        Some(weights) => weights,
        None => {
            let planned = pipeline::plan_offline(plan, None).map_err(boxed)?;
            verify::expected_weights(&planned, &service).map_err(|e| boxed(e.into()))?
        }
    };
    let tally = run::runtime()
        .block_on(verify::sample(&settings))
        .map_err(|e| boxed(e.into()))?;
    let verdict = verify::evaluate(&weights, &tally, significance);
    print(&verify::report(&service, &tally, &verdict));
    Ok(if verdict.passed() {
        exit::OK
    } else {
        exit::ERROR
    })
}

fn translate_files(
    files: &[PathBuf],
    output: TranslateOutput,
    fail_on: FailOn,
    istio_version: IstioVersion,
    colors: &Colors,
) -> Result<u8, Failure> {
    let inventory = Inventory::from_paths(files).map_err(|e| Box::new(e) as Failure)?;
    let options = Options {
        version: istio_version,
        cluster_domain: "cluster.local".to_owned(),
        ..Options::default()
    };
    let translation = translate::translate(&inventory, &options);
    let mut objects = translation.objects.clone();
    objects.extend(translation.services.iter().map(|s| s.after.clone()));
    objects.extend(translation.workloads.iter().map(|w| w.after.clone()));
    match output {
        TranslateOutput::Yaml => {
            let docs: Vec<String> = objects.iter().map(meshplan::diff::to_yaml).collect();
            let text = docs.iter().map(|d| format!("---\n{d}")).collect::<String>();
            print(&text);
            let mut findings_text = String::new();
            report::text::findings(
                &mut findings_text,
                &translation.findings,
                Palette::new(colors.stderr),
            );
            eprint!("{findings_text}");
        }
        TranslateOutput::Json => print(&report::json::translation(&objects, &translation.findings)),
        TranslateOutput::Markdown => print(&report::markdown::translation(
            &objects,
            &translation.findings,
        )),
    }
    let worst = findings::worst(&translation.findings);
    let failed = matches!((fail_on.threshold(), worst), (Some(t), Some(w)) if w >= t);
    Ok(if failed { exit::FINDINGS } else { exit::OK })
}

/// `explain` was given a code that does not exist.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("unknown finding code `{0}`")]
#[diagnostic(help("codes look like MP201; docs/findings.md lists them all"))]
struct UnknownCode(String);

fn boxed(err: meshplan::Error) -> Failure {
    Box::new(err)
}

/// Writes to stdout; a closed pipe (e.g. `| head`) is not an error worth a panic.
fn print(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

/// Text written to stdout as it is produced (a large plan's text is never held whole).
struct StdoutText(std::io::BufWriter<std::io::StdoutLock<'static>>);

impl std::fmt::Write for StdoutText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.write_all(s.as_bytes()).map_err(|_| std::fmt::Error)
    }
}

/// Runs `write` on stdout; a closed stdout (`| head`) ends it quietly, as [`print`] does.
fn stream(write: impl FnOnce(&mut StdoutText) -> std::fmt::Result) {
    let mut out = StdoutText(std::io::BufWriter::new(std::io::stdout().lock()));
    let _ = write(&mut out);
    let _ = out.0.flush();
}

#[cfg(test)]
mod tests {
    use super::{Cli, exit};
    use clap::CommandFactory;

    /// Every command, found from the parser itself, so a new one is checked too.
    fn commands() -> Vec<clap::Command> {
        let cli = Cli::command();
        let mut all = vec![cli.clone()];
        all.extend(cli.get_subcommands().cloned());
        all
    }

    #[test]
    fn every_command_has_examples_in_its_help() {
        for mut command in commands() {
            let help = command.render_long_help().to_string();
            assert!(
                help.contains("Example"),
                "`meshplan {}` --help has no example:\n{help}",
                command.get_name()
            );
        }
    }

    #[test]
    fn completions_and_the_man_page_name_every_command() {
        let mut bash = Vec::new();
        clap_complete::generate(
            clap_complete::Shell::Bash,
            &mut Cli::command(),
            "meshplan",
            &mut bash,
        );
        let bash = String::from_utf8(bash).unwrap();
        let mut man = Vec::new();
        clap_mangen::Man::new(Cli::command())
            .render(&mut man)
            .unwrap();
        let man = String::from_utf8(man).unwrap();
        assert!(man.contains("\n.TH meshplan 1 "), "{man}");
        for command in Cli::command().get_subcommands() {
            let name = command.get_name();
            assert!(bash.contains(&format!("meshplan,{name})")), "bash: {name}");
            assert!(
                man.contains(&format!("meshplan\\-{name}")),
                "man: {name}\n{man}"
            );
        }
    }

    /// The codes of the README's "Exit codes" table.
    fn readme_codes() -> std::collections::BTreeSet<u8> {
        let readme = include_str!("../../../README.md");
        let table = readme
            .split("### Exit codes")
            .nth(1)
            .expect("the README has an Exit codes section");
        table
            .lines()
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .filter_map(|l| {
                l.trim_start_matches('|')
                    .split('|')
                    .next()?
                    .trim()
                    .parse()
                    .ok()
            })
            .collect()
    }

    #[test]
    fn the_readme_table_lists_exactly_the_codes_meshplan_uses() {
        use meshplan::ramp::{Outcome, Phase};
        let mut used: std::collections::BTreeSet<u8> = [
            exit::OK,
            exit::ERROR,
            exit::CHANGES,
            exit::FINDINGS,
            exit::INTERRUPTED,
        ]
        .into();
        // `ramp` exits with its outcome's code.
        for outcome in [
            Outcome::Advanced,
            Outcome::Waiting,
            Outcome::Held,
            Outcome::Paused,
            Outcome::Resumed,
            Outcome::RolledBack,
            Outcome::Aborted,
            Outcome::Promoted,
            Outcome::Completed,
            Outcome::Unchanged,
        ] {
            for phase in [
                Phase::Ramping,
                Phase::Paused,
                Phase::RolledBack,
                Phase::Aborted,
                Phase::Complete,
            ] {
                used.insert(outcome.exit_code(phase));
            }
        }
        // clap's own code for a usage error.
        used.insert(clap::Error::new(clap::error::ErrorKind::ArgumentConflict).exit_code() as u8);
        assert_eq!(readme_codes(), used);
    }
}
