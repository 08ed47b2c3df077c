use crate::helpers::spawn_app;

#[tokio::test]
async fn healthz_and_readyz_answer_when_the_database_is_up() {
    let app = spawn_app().await;
    let (s, body) = app.get("/healthz").await;
    assert_eq!((s, body["status"].as_str()), (200, Some("ok")));
    let (s, body) = app.get("/readyz").await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["database"], "sqlite");
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let app = spawn_app().await;
    let r = app.client.get(app.url("/agent")).send().await.unwrap();
    let h = r.headers();
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["x-frame-options"], "DENY");
}
