//! The schema rotor owns, and typed failures (G10) against the real server.
mod support;

use rotor_pg::{Error, PgRotor};
use support::TestSchema;

#[test]
fn many_processes_first_use_migrates_once_and_reopening_is_idempotent() {
    let schema = TestSchema::new("first_use");
    // Sixteen openers at once on a schema nobody created yet: the advisory
    // transaction lock lets one migrate; the others find it current.
    let openers: Vec<_> = (0..16)
        .map(|_| {
            let url = schema.url();
            std::thread::spawn(move || PgRotor::open(&url).map(|_| ()))
        })
        .collect();
    for opener in openers {
        opener
            .join()
            .unwrap()
            .expect("a concurrent first open failed");
    }
    PgRotor::open(&schema.url()).expect("reopening is idempotent");
    let row = schema
        .admin()
        .query_one(
            &format!(
                "SELECT count(*), max(version) FROM \"{}\".rotor_schema",
                schema.name
            ),
            &[],
        )
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 1, "one version row");
    assert_eq!(
        row.get::<_, Option<i32>>(1),
        Some(rotor_pg::schema::SCHEMA_VERSION)
    );
}

#[test]
fn a_schema_from_a_newer_rotor_is_refused_untouched_g10() {
    let schema = TestSchema::new("too_new");
    PgRotor::open(&schema.url()).unwrap();
    schema
        .admin()
        .batch_execute(&format!(
            "UPDATE \"{}\".rotor_schema SET version = 99",
            schema.name
        ))
        .unwrap();
    match PgRotor::open(&schema.url()) {
        Err(Error::SchemaTooNew {
            found: 99,
            supported,
            ..
        }) => {
            assert_eq!(supported, rotor_pg::schema::SCHEMA_VERSION)
        }
        other => panic!("G10: expected SchemaTooNew, got {other:?}"),
    }
    let version: i32 = schema
        .admin()
        .query_one(
            &format!("SELECT version FROM \"{}\".rotor_schema", schema.name),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(version, 99, "a newer schema is never rewritten");
}

#[test]
fn server_down_and_login_refused_are_typed_and_never_show_the_password_g10() {
    // Nothing listens on port 1.
    let down = PgRotor::open("postgres://alice:hunter2@127.0.0.1:1/test?connect_timeout=2");
    match &down {
        Err(Error::Unreachable(fault)) => {
            assert!(
                fault.detail.contains("alice:***@127.0.0.1:1"),
                "{}",
                fault.detail
            )
        }
        other => panic!("G10: expected Unreachable, got {other:?}"),
    }
    assert!(
        !format!("{down:?}").contains("hunter2"),
        "the password leaked: {down:?}"
    );
    let server = support::server_url();
    let (base, _) = server.split_once("://").unwrap();
    let host = server
        .rsplit_once('@')
        .map_or(server.split_once("://").unwrap().1, |(_, h)| h);
    let refused = PgRotor::open(&format!("{base}://no_such_role_rotor:s3cr3t@{host}"));
    match &refused {
        Err(Error::AuthRefused(fault)) => {
            assert!(fault.detail.contains("login refused"), "{}", fault.detail)
        }
        other => panic!("G10: expected AuthRefused, got {other:?}"),
    }
    assert!(
        !format!("{refused:?}").contains("s3cr3t"),
        "the password leaked: {refused:?}"
    );
    assert!(matches!(
        PgRotor::open("postgres://h/db?rotor_schema=Bad-Name"),
        Err(Error::BadUrl(_))
    ));
}
