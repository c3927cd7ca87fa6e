//! The command line: every command, option and help text (clap derive).
//!
//! The names here are a contract that scripts rely on: change none of them.

use std::ffi::OsString;
use std::num::NonZeroUsize;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const MAIN_EXAMPLES: &str = "\
Examples:
  strongbox key init /var/lib/db1
  strongbox encrypt --db /var/lib/db1 dump.bin -o dump.sbx
  strongbox decrypt --db /var/lib/db1 dump.sbx -o dump.bin
  strongbox --master-key-path /etc/strongbox/master.key key get /var/lib/db1

Master key: --settings, --master-key-path, --master-key-exec or --master-key-kms (at most one,
before the command); none given: the OS default ($HOME/.strongbox/secret.key on Unix, DPAPI on
Windows).

Object storage: where a backup or stream file is named, an object URL works too
(s3://bucket/key, gs://bucket/key, az://container/key, file:///path), credentials and
endpoint from the environment (AWS_ENDPOINT_URL,
AWS_ACCESS_KEY_ID, AWS_ALLOW_HTTP, AZURE_STORAGE_*, GOOGLE_*; docs/OBJECT_STORE.md). An object
appears only once complete and never replaces an existing one.

Exit status: 0 success, 2 usage error, 1 any other failure (one `error:` line on stderr).";

/// Offline key operations and authenticated backup encryption for storage engines.
#[derive(Debug, Parser)]
#[command(name = "strongbox", version, after_help = MAIN_EXAMPLES, max_term_width = 100)]
pub struct Cli {
    /// Where the master key comes from.
    #[command(flatten)]
    pub master: MasterKeyArgs,

    /// No progress bar and no status messages on stderr (errors and warnings still appear).
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Declares a master-key selection: a settings file, a key file, or a program with its arguments
/// and time limit, at most one of the three; the field names make the option names, and the doc
/// comments their help. `group` names the argument group every option but the program's
/// arguments and time limit joins, if any.
macro_rules! master_key_selection {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            group: [$($group:literal)?],
            $(#[doc = $settings_doc:literal])+ $settings:ident,
            $(#[doc = $path_doc:literal])+ $path:ident,
            $(#[doc = $exec_doc:literal])+ $exec:ident,
            $(#[doc = $arg_doc:literal])+ $arg:ident,
            $(#[doc = $timeout_doc:literal])+ $timeout:ident,
            $(#[doc = $kms_doc:literal])+ $kms:ident,
        }
    ) => {
        $(#[$meta])*
        pub struct $name {
            $(#[doc = $settings_doc])+
            #[arg(long, value_name = "FILE", $(group = $group,)?
                  conflicts_with_all = [stringify!($path), stringify!($exec)])]
            pub $settings: Option<PathBuf>,

            $(#[doc = $path_doc])+
            #[arg(long, value_name = "FILE", $(group = $group,)? conflicts_with = stringify!($exec))]
            pub $path: Option<PathBuf>,

            $(#[doc = $exec_doc])+
            #[arg(long, value_name = "PROGRAM", $(group = $group)?)]
            pub $exec: Option<PathBuf>,

            $(#[doc = $arg_doc])+
            #[arg(long, value_name = "ARG", requires = stringify!($exec), allow_hyphen_values = true,
                  action = clap::ArgAction::Append)]
            pub $arg: Vec<String>,

            $(#[doc = $timeout_doc])+
            #[arg(long, value_name = "SECONDS", requires = stringify!($exec),
                  value_parser = clap::value_parser!(u64).range(1..=86_400))]
            pub $timeout: Option<u64>,

            $(#[doc = $kms_doc])+
            #[arg(long, value_name = "URI", $(group = $group,)?
                  conflicts_with_all = [stringify!($settings), stringify!($path), stringify!($exec)])]
            pub $kms: Option<String>,
        }
    };
}

master_key_selection! {
    /// The master-key selection (global options, before the command).
    #[derive(Debug, Args, Clone, Default)]
    #[command(next_help_heading = "Master key (at most one; default: the OS default provider)")]
    pub struct MasterKeyArgs {
        group: [],
        /// Read the master-key settings from a RavenDB-style settings.json (Security.MasterKey.Exec,
        /// .Exec.Arguments, .Exec.TimeoutInSec, .Path, .Kms).
        settings,
        /// Read the master key from FILE (32 raw bytes, or one line of base64 or hex; owner-only).
        master_key_path,
        /// Run PROGRAM (directly, no shell) and read the master key from its standard output.
        master_key_exec,
        /// An argument for the --master-key-exec program (repeat for several).
        master_key_exec_arg,
        /// Time limit for the --master-key-exec program, in seconds [default: 30].
        master_key_exec_timeout,
        /// Protect keys with a KMS key that never leaves the KMS:
        /// vault-transit://HOST:PORT/MOUNT/KEY (token from VAULT_TOKEN or VAULT_TOKEN_FILE).
        /// Or aws-kms://KEY-ID-OR-ARN[?region=R][&endpoint=URL] (the standard AWS credentials;
        /// a build with the aws-kms feature).
        master_key_kms,
    }
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Database keys: create, export, import, re-protect under a new master key.
    #[command(
        subcommand,
        after_help = "\
Examples:
  strongbox key init /var/lib/db1
  strongbox key get /var/lib/db1 > db1.key          # before a password reset
  strongbox key put /var/lib/db1 < db1.key          # after it"
    )]
    Key(KeyCommand),

    /// Master keys.
    #[command(
        subcommand,
        name = "master-key",
        after_help = "\
Example:
  strongbox master-key generate /etc/strongbox/master.key"
    )]
    MasterKey(MasterKeyCommand),

    /// Encrypt a stream (stdin to stdout when INPUT / -o are omitted or `-`).
    #[command(after_help = "\
Examples:
  strongbox encrypt --db /var/lib/db1 dump.bin -o dump.sbx
  pg_dump mydb | strongbox encrypt --key-file backup.key > mydb.sbx
  strongbox encrypt --key-file backup.key --chacha20 --segment-size 1M big.bin -o big.sbx")]
    Encrypt(EncryptArgs),

    /// Decrypt a stream; to a regular file, it appears only once the whole input is authenticated.
    #[command(after_help = "\
Examples:
  strongbox decrypt --db /var/lib/db1 dump.sbx -o dump.bin
  strongbox decrypt --key-file backup.key < mydb.sbx | psql mydb

To stdout, a FIFO or a device, plaintext is written as each segment authenticates: a failure part
way (exit status 1) means what was written must be discarded. Use -o FILE (a regular file) to get
all or nothing.")]
    Decrypt(DecryptArgs),

    /// Authenticate every segment of a stream, or check a backup or chain as `restore` would;
    /// write nothing.
    #[command(after_help = "\
Examples:
  strongbox verify --db /var/lib/db1 dump.sbx
  strongbox verify --key - dump.sbx < backup.key
  strongbox verify full.sbx incr1.sbx incr2.sbx     # a logical chain, in order
  strongbox verify s3://backups/db1/                # the newest chain under a prefix

A backup (a file with a manifest, or several files) is checked as `restore` checks it, with the
same key options and refusals, and nothing is written: one line per backup says whether a key
authenticated it or only integrity tags checked it.")]
    Verify(VerifyArgs),

    /// Show a stream's header or a backup's manifest, without a key.
    #[command(after_help = "\
Example:
  strongbox inspect dump.sbx

Nothing shown is authenticated until a key (or, for an unencrypted file, `verify`) checks it.")]
    Inspect(InspectArgs),

    /// Back up a database directory (snapshot) or a logical export stream into one backup file.
    #[command(after_help = "\
Examples:
  strongbox backup snapshot /var/lib/db1 -o db1.snapshot.sbx
  strongbox backup snapshot /var/lib/db1 --encryption provided-key --key-file k -o db1.sbx
  my-engine export db1 | strongbox backup logical /var/lib/db1 -o db1.full.sbx
  my-engine export --since ... | strongbox backup logical /var/lib/db1 \\
      --incremental-after db1.full.sbx -o db1.incr1.sbx")]
    Backup(BackupArgs),

    /// Restore backup file(s) into a new database directory.
    #[command(after_help = "\
Examples:
  strongbox restore db1.snapshot.sbx --to /var/lib/db1-restored
  strongbox restore db1.full.sbx db1.incr1.sbx --to /tmp/db1 --key-file backup.key
  strongbox restore s3://backups/db1/ --to /var/lib/db1-restored   # the newest chain there

A prefix (an object URL ending with /) restores the newest full logical backup under it and the
incrementals that follow it, found by the previous-backup links of their headers; a fork (two
backups following the same one) or a gap (an incremental since the full backup outside its
chain) is refused: name the backups instead. Then every backup is authenticated as usual.

A logical chain restores as export files in DIR (0000-logical-full.export, ...), to import
in that order.")]
    Restore(RestoreArgs),
}

/// `strongbox key ...`
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create a new random database key in DIR, protected by the master key. Refuses if DIR
    /// already has one.
    #[command(after_help = "\
Example:
  strongbox key init /var/lib/db1      # writes /var/lib/db1/secret.key.encrypted")]
    Init {
        /// The database directory.
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },

    /// Print the database key of DIR as base64 (one line; keep it secret), on stdout or into a
    /// new owner-only file.
    #[command(after_help = "\
Example (before a Windows password reset or a master-key change):
  strongbox key get /var/lib/db1 -o db1.key    # a new file, owner-only (0600) from the start

-o never replaces an existing file.")]
    Get {
        /// The database directory.
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// Write the key to this new file (owner-only; refused if it exists) instead of stdout.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: Option<PathBuf>,
    },

    /// Read a base64 database key from stdin and store it in DIR under the master key.
    #[command(after_help = "\
Example (after a Windows password reset or a master-key change):
  strongbox key put /var/lib/db1 < db1.key

The same key again: success, nothing changes. A different key: refused without --overwrite.")]
    Put {
        /// The database directory.
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// Replace a different key (everything encrypted with it becomes unreadable).
        #[arg(long)]
        overwrite: bool,
        /// Catches a key given on the command line, to refuse it without echoing it.
        #[arg(hide = true, trailing_var_arg = true, allow_hyphen_values = true)]
        stray: Vec<OsString>,
    },

    /// Re-protect the database key of each DIR under a new master key (backups untouched).
    #[command(after_help = "\
Example:
  strongbox key rotate /var/lib/db1 /var/lib/db2 --to-master-key-path /etc/strongbox/new.key

The current master key is the one selected before `key`. Interrupted? Run it again: keys
already under the new master key are left alone, and every key opens with the old or the new.")]
    Rotate(RotateArgs),

    /// Re-seal the database key of each DIR under the newest version of the KMS key (after a
    /// Vault Transit key rotation), without the sealed secret leaving the KMS.
    #[command(after_help = "\
Example:
  bao write -f transit/keys/db-keys/rotate
  strongbox --master-key-kms vault-transit://vault.example:8200/transit/db-keys \\
      key rewrap /var/lib/db1 /var/lib/db2

Keys already under the newest version are left alone; run it again after an interruption.")]
    Rewrap {
        /// The database directories.
        #[arg(value_name = "DIR", required = true)]
        dirs: Vec<PathBuf>,
    },
}

/// `strongbox key rotate`
#[derive(Debug, Args)]
pub struct RotateArgs {
    /// The database directories.
    #[arg(value_name = "DIR", required = true)]
    pub dirs: Vec<PathBuf>,

    /// The new master key.
    #[command(flatten)]
    pub to: ToMasterKeyArgs,
}

master_key_selection! {
    /// The new master key of `key rotate`.
    #[derive(Debug, Args, Clone)]
    #[group(id = "to", required = true, multiple = true)]
    #[command(next_help_heading = "New master key (exactly one)")]
    pub struct ToMasterKeyArgs {
        group: ["to"],
        /// The new master key's settings.json.
        to_settings,
        /// The new master key's file.
        to_master_key_path,
        /// The program that prints the new master key.
        to_master_key_exec,
        /// An argument for the --to-master-key-exec program (repeat for several).
        to_master_key_exec_arg,
        /// Time limit for the --to-master-key-exec program, in seconds [default: 30].
        to_master_key_exec_timeout,
        /// The new master key's KMS URI (vault-transit://HOST:PORT/MOUNT/KEY).
        /// Or aws-kms://KEY-ID-OR-ARN[?region=R][&endpoint=URL].
        to_master_key_kms,
    }
}

/// `strongbox master-key ...`
#[derive(Debug, Subcommand)]
pub enum MasterKeyCommand {
    /// Write a new random 256-bit master key to PATH (owner-only). Refuses to overwrite.
    #[command(after_help = "\
Example:
  strongbox master-key generate /etc/strongbox/master.key
  strongbox --master-key-path /etc/strongbox/master.key key init /var/lib/db1

Back the file up somewhere safe: every key it protects is lost with it.")]
    Generate {
        /// The new key file.
        #[arg(value_name = "PATH")]
        path: PathBuf,
    },
}

/// Where a data key comes from (never the command line itself).
#[derive(Debug, Args, Clone, Default)]
#[group(id = "key-input", multiple = false)]
#[command(next_help_heading = "Key (one of)")]
pub struct KeyInputArgs {
    /// A file holding the key as base64 (one line).
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,

    /// `-`: read the base64 key from stdin. A key value here is refused: it would show in the
    /// process list.
    #[arg(long, value_name = "-", allow_hyphen_values = true)]
    pub key: Option<OsString>,

    /// The database key of DIR (DIR/secret.key.encrypted, opened with the master key).
    #[arg(long, value_name = "DIR")]
    pub db: Option<PathBuf>,
}

/// Options shared by the streaming commands.
#[derive(Debug, Args, Clone, Copy, Default)]
pub struct ThreadArgs {
    /// Worker threads for encryption / decryption [default: all cores; at most one per core].
    #[arg(long, value_name = "N")]
    pub threads: Option<NonZeroUsize>,
}

/// The stream written by `encrypt` and the backup commands.
#[derive(Debug, Args)]
pub struct StreamArgs {
    /// Use ChaCha20-Poly1305 instead of AES-256-GCM.
    #[arg(long)]
    pub chacha20: bool,

    /// Plaintext bytes per segment, 4K to 16M (suffixes K, M: powers of 1024) [default: 64K].
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    pub segment_size: Option<usize>,

    /// Threads.
    #[command(flatten)]
    pub threads: ThreadArgs,
}

/// Age recipients the key is also wrapped to.
#[derive(Debug, Args)]
pub struct RecipientArgs {
    /// Also wrap the key to this age recipient (`age1...`, `ssh-ed25519 ...`, `ssh-rsa ...`);
    /// repeat for several. `encrypt` without a key option: write-only, a fresh key wrapped
    /// only to the recipients.
    #[arg(short = 'r', long, value_name = "RECIPIENT", action = clap::ArgAction::Append)]
    pub recipient: Vec<String>,

    /// Also wrap the key to every recipient of this file (one per line, `#` comments), as
    /// `age -R` reads it; repeat for several.
    #[arg(short = 'R', long, value_name = "FILE", action = clap::ArgAction::Append)]
    pub recipients_file: Vec<PathBuf>,
}

/// The key and the output of `encrypt` and `decrypt` (the key is not needed to decrypt an
/// unencrypted stream).
#[derive(Debug, Args)]
pub struct CryptArgs {
    /// The key.
    #[command(flatten)]
    pub key: KeyInputArgs,

    /// Where to write; omitted or `-`: stdout. A regular file appears only when complete
    /// (written beside it, then renamed over it, keeping its mode); a symbolic link's target is
    /// what is replaced; a FIFO or a device is written in place. A read-only file or one with
    /// other hard links is refused. `encrypt` also takes an object URL: a new object, which
    /// appears only when complete.
    #[arg(short, long, value_name = "OUTPUT")]
    pub output: Option<PathBuf>,
}

/// `strongbox encrypt`
#[derive(Debug, Args)]
pub struct EncryptArgs {
    /// The key and where to write.
    #[command(flatten)]
    pub crypt: CryptArgs,

    /// The file or object URL to encrypt; omitted or `-`: stdin.
    #[arg(value_name = "INPUT")]
    pub input: Option<PathBuf>,

    /// Cipher, segments and threads.
    #[command(flatten)]
    pub stream: StreamArgs,

    /// Age recipients (without a key option: write-only, a fresh key wrapped only to them).
    #[command(flatten)]
    pub recipients: RecipientArgs,
}

/// `strongbox decrypt`
#[derive(Debug, Args)]
pub struct DecryptArgs {
    /// The key and where to write.
    #[command(flatten)]
    pub crypt: CryptArgs,

    /// The file or object URL to decrypt; omitted or `-`: stdin.
    #[arg(value_name = "INPUT")]
    pub input: Option<PathBuf>,

    /// Threads.
    #[command(flatten)]
    pub threads: ThreadArgs,

    /// Open the stream's recipient slots with this age identity file or SSH private key;
    /// repeat for several.
    #[arg(short = 'i', long, value_name = "FILE", action = clap::ArgAction::Append)]
    pub identity: Vec<PathBuf>,
}

/// `strongbox verify`
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The file or object URL to verify (`-`: stdin): a stream, a backup, a logical chain's
    /// full backup, or a folder (a directory, or an object prefix ending with `/`): the newest
    /// logical chain in it.
    #[arg(value_name = "INPUT")]
    pub input: PathBuf,

    /// The incremental backups that follow INPUT in a logical chain, in order.
    #[arg(value_name = "INCREMENTAL")]
    pub chain: Vec<PathBuf>,

    /// The key (not needed for an unencrypted stream, nor for a backup whose wrapped copy a
    /// master key opens).
    #[command(flatten)]
    pub key: KeyInputArgs,

    /// For a backup: how it is read, as by `restore`.
    #[command(flatten)]
    pub reading: BackupReadArgs,

    /// Threads.
    #[command(flatten)]
    pub threads: ThreadArgs,
}

/// `strongbox inspect`
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The file or object URL to inspect (`-`: stdin).
    #[arg(value_name = "INPUT")]
    pub input: PathBuf,
}

/// `strongbox backup`
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// What to back up.
    #[command(subcommand)]
    pub kind: BackupKindArgs,
}

/// `strongbox backup snapshot|logical`
#[derive(Debug, Subcommand)]
pub enum BackupKindArgs {
    /// A consistent copy of the files of a database directory (encrypted with the database's
    /// key if it has one).
    #[command(after_help = "\
Example:
  strongbox backup snapshot /var/lib/db1 -o db1.snapshot.sbx")]
    Snapshot(SnapshotArgs),
    /// The engine's own export stream (from INPUT or stdin), optionally compressed; full, or
    /// incremental after an earlier backup.
    #[command(after_help = "\
Examples:
  my-engine export db1 | strongbox backup logical /var/lib/db1 -o db1.full.sbx
  strongbox backup logical /var/lib/db1 export.bin --incremental-after db1.full.sbx -o db1.i1.sbx
  my-engine export db1 | strongbox backup logical /var/lib/db1 -o s3://backups/db1/0001.full")]
    Logical(LogicalArgs),
    /// Adds or removes recipient slots, master-key copies or the database-key copy of a backup,
    /// rewriting only its header (the data is copied unchanged; the file is replaced
    /// atomically). The key is opened as a restore opens it.
    #[command(after_help = "\
Examples:
  strongbox backup rewrap db1.full.sbx -r age1... --remove-database-key-copy
  strongbox backup rewrap db1.full.sbx -i backup-identity.txt --remove-slot 0")]
    Rewrap(RewrapArgs),
    /// Lists the backups in an object-store prefix or a local directory: one line per object
    /// (file) with its kind, size, creation date, key and chain, read from its header alone.
    #[command(after_help = "\
Examples:
  strongbox backup list s3://backups/db1/
  strongbox backup list /var/backups/db1 --json

Columns: NAME (below the prefix), KIND (snapshot, full, incremental, or not-a-backup),
SIZE (bytes), CREATED (the manifest's date, UTC), KEY (the key id; `none`: not encrypted;
`recipients`: only age recipients can open it) and CHAIN (an incremental's previous backup, by
name, or MISSING). Objects that are not backups get a line saying why.

Nothing listed is authenticated: it comes from each object's header, which anyone who can
write the folder could have forged. `verify` and `restore` authenticate. Only each object's
header is read (one ranged GET per object, closed after the header), never a whole backup.
A local directory is listed without its subdirectories; an object prefix with everything
below it.")]
    List(ListArgs),
}

/// `strongbox backup list`
#[derive(Debug, Args)]
pub struct ListArgs {
    /// The object prefix (`s3://bucket/db1/`, `gs://...`, `az://...`, `file:///...`) or the
    /// local directory.
    #[arg(value_name = "URL-PREFIX|DIR")]
    pub folder: PathBuf,

    /// One JSON document instead of lines.
    #[arg(long)]
    pub json: bool,
}

/// `strongbox backup rewrap`
#[derive(Debug, Args)]
pub struct RewrapArgs {
    /// The backup file (replaced atomically; a local file, not an object).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// Add a slot for this age recipient; repeat for several.
    #[arg(short = 'r', long, value_name = "RECIPIENT", action = clap::ArgAction::Append)]
    pub recipient: Vec<String>,

    /// Add a slot for every recipient of this file (as `age -R` reads it); repeat for several.
    #[arg(short = 'R', long, value_name = "FILE", action = clap::ArgAction::Append)]
    pub recipients_file: Vec<PathBuf>,

    /// Remove the recipient slot of this index (as `inspect` lists them, from 0); repeat.
    #[arg(long, value_name = "N", action = clap::ArgAction::Append)]
    pub remove_slot: Vec<usize>,

    /// Add a copy wrapped under this master-key file; repeat for several.
    #[arg(long, value_name = "FILE", action = clap::ArgAction::Append)]
    pub add_master_key_path: Vec<PathBuf>,

    /// Remove the copies wrapped under the master key of this fingerprint (hex); repeat.
    #[arg(long, value_name = "FINGERPRINT", action = clap::ArgAction::Append)]
    pub remove_master_key: Vec<String>,

    /// Remove the copy wrapped under the current master key (the database-key copy).
    #[arg(long)]
    pub remove_database_key_copy: bool,

    /// Add a copy under the current master key (the database-key copy).
    #[arg(long, conflicts_with = "remove_database_key_copy")]
    pub add_database_key_copy: bool,

    /// The backup's key, if neither a master key nor an identity opens it.
    #[command(flatten)]
    pub key: BackupKeyArgs,

    /// How the key is found: recovery master keys and identities.
    #[command(flatten)]
    pub reading: BackupReadArgs,
}

/// Options common to both kinds of backup.
#[derive(Debug, Args)]
pub struct BackupCommon {
    /// The backup file or object URL to write (it appears only once complete, and never
    /// replaces an existing one).
    #[arg(short, long, value_name = "OUTPUT")]
    pub output: PathBuf,

    /// Encryption: `database-key` (the database's own key), `provided-key` (with --key-file or
    /// --key -) or `none` [default: follow the database].
    #[arg(long, value_name = "MODE", value_parser = ["none", "database-key", "provided-key"])]
    pub encryption: Option<String>,

    /// The key for --encryption provided-key.
    #[command(flatten)]
    pub key: BackupKeyArgs,

    /// Compression before encryption [default: zstd for logical, none for snapshot].
    #[arg(long, value_name = "ALGO", value_parser = ["none", "zstd"])]
    pub compression: Option<String>,

    /// The database name recorded in the manifest [default: the directory's name].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// Also wrap the backup's key under this recovery master-key file (repeat for several).
    #[arg(long, value_name = "FILE", action = clap::ArgAction::Append)]
    pub recovery_master_key_path: Vec<PathBuf>,

    /// Cipher, segments and threads.
    #[command(flatten)]
    pub stream: StreamArgs,

    /// Age recipients.
    #[command(flatten)]
    pub recipients: RecipientArgs,
}

/// A provided backup key (no `--db`: the database key is `--encryption database-key`).
#[derive(Debug, Args, Clone, Default)]
#[group(id = "backup-key-input", multiple = false)]
pub struct BackupKeyArgs {
    /// A file holding the key as base64 (one line).
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,

    /// `-`: read the base64 key from stdin. A key value here is refused.
    #[arg(long, value_name = "-", allow_hyphen_values = true)]
    pub key: Option<OsString>,
}

/// `strongbox backup snapshot`
#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// The database directory.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,

    /// Common options.
    #[command(flatten)]
    pub common: BackupCommon,
}

/// `strongbox backup logical`
#[derive(Debug, Args)]
pub struct LogicalArgs {
    /// The database directory (its key and name).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,

    /// The export stream; omitted or `-`: stdin.
    #[arg(value_name = "INPUT")]
    pub input: Option<PathBuf>,

    /// Make an incremental backup following this earlier backup file (or object URL), or the
    /// last backup of the newest logical chain in a folder (a directory, or an object prefix
    /// ending with `/`), found as `restore FOLDER` finds it.
    #[arg(long, value_name = "BACKUP")]
    pub incremental_after: Option<PathBuf>,

    /// Write-only: encrypt with a fresh key wrapped only to the recipients (and any
    /// --recovery-master-key-path), never to this host's master key.
    #[arg(long)]
    pub write_only: bool,

    /// Common options.
    #[command(flatten)]
    pub common: BackupCommon,
}

/// `strongbox restore`
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup file(s) or object URL(s): one snapshot, or a full logical backup and its
    /// incrementals in order; or one folder (a directory, or an object prefix ending with `/`):
    /// its newest logical chain.
    #[arg(value_name = "BACKUP", required = true)]
    pub backups: Vec<PathBuf>,

    /// The new database directory (must not exist; built beside it, moved into place at the end).
    #[arg(long, value_name = "DIR")]
    pub to: PathBuf,

    /// The backup's key, if no master key it was wrapped under is available.
    #[command(flatten)]
    pub key: BackupKeyArgs,

    /// How the backups are read.
    #[command(flatten)]
    pub reading: BackupReadArgs,

    /// Threads.
    #[command(flatten)]
    pub threads: ThreadArgs,
}

/// How `restore` and `verify` read backups: master keys, integrity-only members, the
/// expansion limit.
#[derive(Debug, Args)]
pub struct BackupReadArgs {
    /// Also try this recovery master-key file on the backup's wrapped keys (repeat for several).
    #[arg(long, value_name = "FILE", action = clap::ArgAction::Append)]
    pub recovery_master_key_path: Vec<PathBuf>,

    /// Also accept unencrypted backups that nothing authenticates, when a key was given or
    /// another backup of the chain is encrypted (anyone who can write the backup folder could
    /// have made them).
    #[arg(long)]
    pub allow_unauthenticated_members: bool,

    /// Refuse a compressed backup that decompresses to more than N bytes per byte of its file
    /// (or 16 MiB, whichever is more); 0: no limit. Default: 1024.
    #[arg(long, value_name = "N")]
    pub max_expansion_ratio: Option<u64>,

    /// Open the backup's recipient slots with the identities of this age identity file or SSH
    /// private key (a passphrase-protected one asks on the terminal); repeat for several.
    #[arg(short = 'i', long, value_name = "FILE", action = clap::ArgAction::Append)]
    pub identity: Vec<PathBuf>,
}

/// Parses a byte size: `65536`, `64K`, `64KiB`, `1M`, `1MiB` (powers of 1024).
fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let lower = text.to_ascii_lowercase();
    let (digits, unit) = match lower.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => lower.split_at(i),
        None => (lower.as_str(), ""),
    };
    let factor: usize = match unit.trim() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        _ => return Err(format!("`{text}` is not a size (examples: 65536, 64K, 1M)")),
    };
    digits
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .ok_or_else(|| format!("`{text}` is not a size (examples: 65536, 64K, 1M)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("64K"), Ok(65536));
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("1M"), Ok(1 << 20));
        assert_eq!(parse_size("16mib"), Ok(16 << 20));
        assert!(parse_size("").is_err());
        assert!(parse_size("12Q").is_err());
        assert!(parse_size("K").is_err());
        assert!(parse_size("99999999999999999999999M").is_err());
    }
}
