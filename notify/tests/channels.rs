//! Each channel against a real receiver on loopback that checks the documented format and
//! signature the way the real service (or a webhook consumer) would.

mod common;

use common::{Check, Receiver, SmtpServer};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use steward_estate::clock::{Clock, ManualClock};
use steward_notify::channel::robots::dingtalk_sign;
use steward_notify::channel::webhook::{DEFAULT_WINDOW, DELIVERY_HEADER};
use steward_notify::channel::{Channels, Delivery, SendError};
use steward_notify::config::{
    DingtalkConfig, EmailConfig, EndpointConfig, HttpMethod, RobotFormat, SmsConfig, SmsEncoding,
    WebhookConfig, WecomConfig,
};
use steward_notify::{verify_webhook, Notification, NotifyConfig, Recipient, Secret};

const NOW_MS: i64 = 1_796_000_000_000;

fn notification() -> Notification {
    Notification {
        ticket_id: "T-42".into(),
        tier: 0,
        round: 0,
        priority: "P1".into(),
        title: "电梯困人 trapped passenger".into(),
        text: "Building 3, lift A, floor 7".into(),
        link: Some("http://hub.example/ack/abc".into()),
    }
}

fn crew() -> Recipient {
    Recipient::new("crew-7", "Wang Wu")
        .with_phone("13812345678")
        .with_email("wang.wu@example.com")
}

fn channels(endpoints: Vec<(&str, EndpointConfig)>) -> (Channels, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(NOW_MS));
    let mut cfg = NotifyConfig {
        outbox: Default::default(),
        endpoints: BTreeMap::new(),
    };
    cfg.outbox.request_timeout = Duration::from_secs(20);
    for (name, e) in endpoints {
        cfg.endpoints.insert(name.to_string(), e);
    }
    assert!(cfg.validate().is_empty(), "{:?}", cfg.validate());
    let c = Channels::new(&cfg, clock.clone()).expect("channels");
    (c, clock)
}

async fn send(c: &Channels, endpoint: &str, key: &str) -> Result<(), SendError> {
    let (n, r) = (notification(), crew());
    c.send(
        endpoint,
        Delivery {
            key,
            notification: &n,
            recipient: &r,
        },
    )
    .await
}

#[tokio::test]
async fn webhook_receiver_verifies_the_signature() {
    let secret = "whsec-test-1";
    let receiver_clock = Arc::new(ManualClock::new(NOW_MS));
    let rc = receiver_clock.clone();
    let check: Check = Arc::new(move |r| {
        verify_webhook(
            secret.as_bytes(),
            r.header("x-steward-timestamp"),
            r.header("x-steward-signature"),
            &r.body,
            rc.now_ms() / 1000,
            DEFAULT_WINDOW,
        )
        .map_err(|e| e.to_string())
    });
    let rx = Receiver::start(check).await;
    let hook = |secret: &str| {
        EndpointConfig::Webhook(WebhookConfig {
            url: rx.url("/steward"),
            secret: Secret::new(secret),
        })
    };
    let (c, clock) = channels(vec![("good", hook(secret)), ("bad", hook("wrong"))]);

    send(&c, "good", "T-42/0/crew-7/good")
        .await
        .expect("delivered");
    let got = rx.accepted();
    assert_eq!(got.len(), 1);
    let body = got[0].json();
    assert_eq!(body["ticket_id"], "T-42");
    assert_eq!(body["priority"], "P1");
    assert_eq!(body["recipient"]["id"], "crew-7");
    assert_eq!(got[0].header(DELIVERY_HEADER), "T-42/0/crew-7/good");
    let raw = String::from_utf8_lossy(&got[0].body);
    assert!(
        !raw.contains(secret) && !raw.contains("13812345678"),
        "{raw}"
    );

    let err = send(&c, "bad", "k")
        .await
        .expect_err("wrong secret refused");
    assert!(
        matches!(err, SendError::Status { status: 400, .. }),
        "{err}"
    );
    assert!(rx.rejected()[0].contains("does not match"));

    // A request replayed after the window is refused by the receiver.
    clock.set(NOW_MS);
    receiver_clock.set(NOW_MS + 301_000);
    let err = send(&c, "good", "k").await.expect_err("outside the window");
    assert!(
        matches!(err, SendError::Status { status: 400, .. }),
        "{err}"
    );
    assert!(
        rx.rejected()[1].contains("replay window"),
        "{:?}",
        rx.rejected()
    );
}

#[tokio::test]
async fn wecom_robot_gets_its_documented_format() {
    let key = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa";
    let check: Check = Arc::new(move |r| {
        if r.path != "/cgi-bin/webhook/send" {
            return Err(format!("path {}", r.path));
        }
        if r.param("key").as_deref() != Some(key) {
            return Err("bad key".into());
        }
        let v = r.json();
        match v["msgtype"].as_str() {
            Some("markdown") if v["markdown"]["content"].is_string() => Ok(()),
            Some("text") if v["text"]["content"].is_string() => Ok(()),
            _ => Err(format!("not a wecom message: {v}")),
        }
    });
    let rx = Receiver::start(check).await;
    let wecom = |format| {
        EndpointConfig::Wecom(WecomConfig {
            url: rx.url("/cgi-bin/webhook/send"),
            key: Secret::new(key),
            format,
        })
    };
    let (c, _) = channels(vec![
        ("md", wecom(RobotFormat::Markdown)),
        ("text", wecom(RobotFormat::Text)),
    ]);
    send(&c, "md", "k1").await.expect("markdown delivered");
    send(&c, "text", "k2").await.expect("text delivered");
    let got = rx.accepted();
    assert_eq!(got.len(), 2);
    let md = got[0].json();
    let content = md["markdown"]["content"].as_str().unwrap_or_default();
    assert!(content.contains("[P1] 电梯困人"), "{content}");
    assert!(!content.contains(key));
    let text = got[1].json();
    assert_eq!(text["text"]["mentioned_mobile_list"][0], "13812345678");

    // errcode != 0 is a failure, with the robot's reason.
    rx.set_reply(200, r#"{"errcode":45009,"errmsg":"api freq out of limit"}"#);
    let err = send(&c, "md", "k3").await.expect_err("errcode");
    assert!(
        matches!(err, SendError::Robot { errcode: 45009, .. }),
        "{err}"
    );
    assert!(!err.is_permanent());
}

#[tokio::test]
async fn dingtalk_robot_gets_a_signed_url() {
    let token = "dt-access-token";
    let secret = "SECdingtalk-secret";
    let check: Check = Arc::new(move |r| {
        if r.param("access_token").as_deref() != Some(token) {
            return Err("bad access_token".into());
        }
        let ts: i64 = r
            .param("timestamp")
            .and_then(|t| t.parse().ok())
            .ok_or("no timestamp")?;
        // DingTalk refuses a timestamp more than an hour from its clock.
        if (ts - NOW_MS).abs() > 3_600_000 {
            return Err("timestamp out of range".into());
        }
        // The raw query carries the base64 URL-encoded: no bare '+', '/' or '='.
        let raw = r.query.as_deref().unwrap_or("");
        let raw_sign = raw
            .split('&')
            .find_map(|p| p.strip_prefix("sign="))
            .ok_or("no sign")?;
        if raw_sign.contains(['+', '/', '=']) {
            return Err(format!("sign not url-encoded: {raw_sign}"));
        }
        if r.param("sign") != Some(dingtalk_sign(secret, ts)) {
            return Err("sign mismatch".into());
        }
        let v = r.json();
        match v["msgtype"].as_str() {
            Some("markdown")
                if v["markdown"]["title"].is_string() && v["markdown"]["text"].is_string() =>
            {
                Ok(())
            }
            Some("text") if v["text"]["content"].is_string() => Ok(()),
            _ => Err(format!("not a dingtalk message: {v}")),
        }
    });
    let rx = Receiver::start(check).await;
    let ding = |secret: &str| {
        EndpointConfig::Dingtalk(DingtalkConfig {
            url: rx.url("/robot/send"),
            access_token: Secret::new(token),
            secret: Some(Secret::new(secret)),
            format: RobotFormat::Markdown,
        })
    };
    let (c, _) = channels(vec![
        ("captains", ding(secret)),
        ("wrong", ding("SECother")),
    ]);
    send(&c, "captains", "k1").await.expect("delivered");
    let got = rx.accepted();
    assert_eq!(got.len(), 1);
    let v = got[0].json();
    assert_eq!(v["at"]["atMobiles"][0], "13812345678");
    assert!(v["markdown"]["text"]
        .as_str()
        .unwrap_or_default()
        .contains("@13812345678"));
    let raw = String::from_utf8_lossy(&got[0].body);
    assert!(!raw.contains(secret) && !raw.contains(token));

    let err = send(&c, "wrong", "k2").await.expect_err("bad sign");
    assert!(rx.rejected()[0].contains("sign mismatch"), "{err}");
}

#[tokio::test]
async fn transport_errors_do_not_leak_robot_keys() {
    let dead = common::free_addr();
    let (c, _) = channels(vec![(
        "wecom",
        EndpointConfig::Wecom(WecomConfig {
            url: format!("http://{dead}/cgi-bin/webhook/send"),
            key: Secret::new("very-secret-key"),
            format: RobotFormat::Markdown,
        }),
    )]);
    let err = send(&c, "wecom", "k").await.expect_err("nobody listens");
    assert!(matches!(err, SendError::Transport(_)), "{err}");
    assert!(!err.to_string().contains("very-secret-key"), "{err}");
}

#[tokio::test]
async fn sms_gateway_template_is_filled_in() {
    let check: Check = Arc::new(|r| {
        if r.header("authorization") != "Bearer sms-api-key" {
            return Err("unauthorised".into());
        }
        if r.param("sign").as_deref() != Some("Steward") {
            return Err("no sign name".into());
        }
        let v = r.json();
        if v["to"] != "13812345678" {
            return Err(format!("to: {v}"));
        }
        let text = v["msg"].as_str().unwrap_or_default();
        if !text.starts_with("[P1] 电梯困人") {
            return Err(format!("msg: {text}"));
        }
        Ok(())
    });
    let rx = Receiver::start(check).await;
    rx.set_reply(200, r#"{"code":"OK"}"#);
    let sms = |success: &str| {
        EndpointConfig::Sms(SmsConfig {
            url: rx.url("/sms/send?sign=Steward"),
            method: HttpMethod::Post,
            body_template: Some(r#"{"to":"{phone}","msg":"{text}"}"#.into()),
            encoding: SmsEncoding::Json,
            headers: BTreeMap::from([("Authorization".into(), Secret::new("Bearer sms-api-key"))]),
            success_contains: Some(success.into()),
        })
    };
    let (c, _) = channels(vec![("sms", sms("\"OK\"")), ("picky", sms("\"SENT\""))]);
    send(&c, "sms", "k1").await.expect("sent");
    assert_eq!(rx.accepted().len(), 1, "{:?}", rx.rejected());
    let err = send(&c, "picky", "k2")
        .await
        .expect_err("answer without the marker");
    assert!(matches!(err, SendError::Answer(_)), "{err}");

    // No phone: nothing to retry, the delivery is dead at once.
    let n = notification();
    let r = Recipient::new("crew-8", "No Phone");
    let err = c
        .send(
            "sms",
            Delivery {
                key: "k3",
                notification: &n,
                recipient: &r,
            },
        )
        .await
        .expect_err("no phone");
    assert!(err.is_permanent());
}

#[tokio::test]
async fn email_reaches_a_real_smtp_server() {
    let Some(smtp) = SmtpServer::start().await else {
        return;
    };
    let (c, _) = channels(vec![(
        "mail",
        EndpointConfig::Email(EmailConfig {
            host: smtp.addr.ip().to_string(),
            port: smtp.addr.port(),
            from: "Steward <steward@example.com>".into(),
            username: None,
            password: None,
        }),
    )]);
    send(&c, "mail", "T-42/0/crew-7/mail").await.expect("sent");
    common::wait_until("the message in the maildir", || smtp.messages().len() == 1).await;
    let msg = &smtp.messages()[0];
    assert!(msg.contains("X-RcptTo: wang.wu@example.com"), "{msg}");
    assert!(msg.contains("Subject:"), "{msg}");
    assert!(msg.contains("Building 3, lift A, floor 7"), "{msg}");
    assert!(msg.contains("Message-ID: <"), "{msg}");
}

#[tokio::test]
async fn email_authenticates_when_the_server_requires_it() {
    let Some(smtp) = SmtpServer::start_with_auth("steward", "mail-pass-1").await else {
        return;
    };
    let mail = |password: &str| {
        EndpointConfig::Email(EmailConfig {
            host: smtp.addr.ip().to_string(),
            port: smtp.addr.port(),
            from: "Steward <steward@example.com>".into(),
            username: Some("steward".into()),
            password: Some(Secret::new(password)),
        })
    };
    let (c, _) = channels(vec![("mail", mail("mail-pass-1")), ("bad", mail("nope"))]);
    let err = send(&c, "bad", "k0").await.expect_err("wrong password");
    assert!(matches!(err, SendError::Smtp { .. }), "{err}");
    assert!(!err.to_string().contains("nope"), "{err}");
    send(&c, "mail", "k1").await.expect("sent with auth");
    common::wait_until("the message in the maildir", || smtp.messages().len() == 1).await;
    assert!(smtp.messages()[0].contains("X-RcptTo: wang.wu@example.com"));
}

#[tokio::test]
async fn a_stalled_peer_is_given_up_on() {
    // Accepts connections and never says a word (an SMTP server owes a greeting).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let clock = Arc::new(ManualClock::new(NOW_MS));
    let mut cfg = NotifyConfig {
        outbox: Default::default(),
        endpoints: BTreeMap::new(),
    };
    cfg.outbox.request_timeout = Duration::from_secs(1);
    cfg.endpoints.insert(
        "mail".into(),
        EndpointConfig::Email(EmailConfig {
            host: addr.ip().to_string(),
            port: addr.port(),
            from: "Steward <steward@example.com>".into(),
            username: None,
            password: None,
        }),
    );
    let c = Channels::new(&cfg, clock).expect("channels");
    let err = send(&c, "mail", "k").await.expect_err("stalled");
    assert!(!err.is_permanent(), "{err}");
    holder.abort();
}
