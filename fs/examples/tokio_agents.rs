//! Many agents of one tokio process asking for one profile's token at once
//! through `AsyncRotor` (feature `tokio`): they coalesce on one refresh.
//!
//! ```sh
//! cargo run -p rotor-fs --features tokio --example tokio_agents -- \
//!     <state dir> <provider> <profile> <tasks> [agent…]
//! ```
//!
//! Tasks are spread over the agents (default `main`). With `--wait-for-go`
//! it reads one line from stdin before starting (the node interop test
//! starts many processes together). Prints one JSON line per task:
//! `{"agent", "access_token", "outcome"}` or `{"agent", "error"}`.
//! Tokens are printed because this is a test fixture; a real host never
//! prints one.

use rotor_fs::AsyncRotor;

#[tokio::main]
async fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let wait_for_go = args.iter().any(|arg| arg == "--wait-for-go");
    args.retain(|arg| arg != "--wait-for-go");
    if args.len() < 4 {
        eprintln!(
            "usage: tokio_agents [--wait-for-go] <state dir> <provider> <profile> <tasks> [agent…]"
        );
        std::process::exit(2);
    }
    let (provider, profile) = (args[1].clone(), args[2].clone());
    let tasks: usize = args[3].parse().expect("tasks: a number");
    let agents: Vec<String> = if args.len() > 4 {
        args[4..].to_vec()
    } else {
        vec!["main".into()]
    };
    let rotor = AsyncRotor::open(&args[0])
        .await
        .expect("open the state directory");
    if wait_for_go {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
    }
    let handles: Vec<_> = (0..tasks)
        .map(|i| {
            let (rotor, provider, profile) = (rotor.clone(), provider.clone(), profile.clone());
            let agent = agents[i % agents.len()].clone();
            tokio::spawn(async move {
                let result = rotor.token(&agent, &provider, &profile).await;
                (agent, result)
            })
        })
        .collect();
    for handle in handles {
        let (agent, result) = handle.await.expect("a task panicked");
        let line = match result {
            Ok(granted) => serde_json::json!({
                "agent": agent,
                "access_token": granted.access.expose(),
                "outcome": format!("{:?}", granted.outcome),
            }),
            Err(error) => serde_json::json!({"agent": agent, "error": error.to_string()}),
        };
        println!("{line}");
    }
}
