//! `reflector worker --health-listen`: a worker serves the public health check, and nothing
//! else, for container health checks.

mod common;

use common::*;
use reflector::server::Options;

#[tokio::test]
async fn a_worker_serves_only_the_health_check_on_its_health_address() {
    let t = start_with(
        |_| {},
        Options {
            no_http: true,
            health_listen: Some("127.0.0.1:0".parse().unwrap()),
            ..Options::default()
        },
    )
    .await;
    let (s, h) = t.get("/api/reflection/health").await;
    assert_eq!(s, 200, "{h}");
    assert_eq!(h["components"]["reflection"]["status"], "up", "{h}");
    assert_eq!(h["components"]["store"]["status"], "up", "{h}");
    for path in ["/api/memory/stats/ana", "/metrics", "/openapi.json"] {
        let (s, b) = t.get(path).await;
        assert_eq!(s, 404, "{path}: {b}");
    }
    t.stop().await;
}
