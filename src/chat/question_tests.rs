use serde_json::json;

use super::*;
use crate::mattermost::model::Any;

const SECRET: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const NOW: i64 = 1_790_000_000;

fn signer() -> ActionSigner {
    ActionSigner::new(SECRET).unwrap()
}

fn target() -> CardTarget<'static> {
    CardTarget {
        site_url: "",
        session_id: "s1",
        request_id: "r1",
        expires_at: NOW + 600,
    }
}

fn ask(multi: bool) -> Value {
    json!({"questions": [{
        "question": "Which color should we use?", "header": "Color", "multiSelect": multi,
        "options": [{"label": "Blue", "description": "calm"}, {"label": "Red @all", "description": ""}]
    }]})
}

fn parsed(input: &Value) -> Vec<Question> {
    match Interaction::of(ASK_TOOL, input, true) {
        Some(Interaction::Questions(qs)) => qs,
        other => panic!("{other:?}"),
    }
}

fn context(action: &PostAction) -> Value {
    let ctx = action
        .integration
        .as_ref()
        .unwrap()
        .context
        .as_ref()
        .unwrap();
    Value::Object(
        ctx.iter()
            .map(|(k, v)| match v {
                Any::String(s) => (k.clone(), Value::String(s.clone())),
                _ => panic!("{v:?}"),
            })
            .collect(),
    )
}

#[test]
fn interactions_need_the_flag_and_a_known_form() {
    assert_eq!(Interaction::of(ASK_TOOL, &ask(false), false), None);
    assert_eq!(Interaction::of("Bash", &json!({}), true), None);
    assert_eq!(
        Interaction::of(ASK_TOOL, &json!({"questions": "x"}), true),
        None
    );
    assert_eq!(
        Interaction::of(ASK_TOOL, &json!({"questions": []}), true),
        None
    );
    assert_eq!(
        Interaction::of(
            PLAN_TOOL,
            &json!({"plan": "# Plan\n1. do", "planFilePath": "/p.md"}),
            true
        ),
        Some(Interaction::Plan(Some("# Plan\n1. do".into())))
    );
    assert_eq!(
        Interaction::of(PLAN_TOOL, &json!({}), true),
        Some(Interaction::Plan(None))
    );
}

#[test]
fn a_single_choice_gets_a_signed_button_per_option_and_other() {
    let qs = parsed(&ask(false));
    let att = question_attachment(&target(), &signer(), &qs);
    let ids: Vec<&str> = att.actions.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["q0o0", "q0o1", "answer"]);
    let names: Vec<&str> = att.actions.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names[0], "Blue");
    assert!(!names[1].contains("@all"), "{}", names[1]);
    assert_eq!(names[2], "Other…");
    assert!(att.text.contains("Which color should we use?") && att.text.contains("calm"));
    // Each button's id is what its signature covers.
    let ctx = signer().verify(&context(&att.actions[1]), NOW).unwrap();
    assert_eq!(
        ctx.action,
        ApprovalAction::Answer {
            question: 0,
            option: 1
        }
    );
    assert_eq!(
        option_answer(&qs, 0, 1),
        Some(vec![(qs[0].text.clone(), "Red @all".into())])
    );
    assert_eq!(option_answer(&qs, 0, 2), None);
    assert_eq!(option_answer(&qs, 1, 0), None);
}

#[test]
fn a_multiple_choice_is_answered_in_a_dialog_of_checkboxes() {
    let qs = parsed(&ask(true));
    let att = question_attachment(&target(), &signer(), &qs);
    let ids: Vec<&str> = att.actions.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["answer"]);
    assert_eq!(att.actions[0].name, "Answer…");
    let ctx = signer().verify(&context(&att.actions[0]), NOW).unwrap();
    let dialog = answer_dialog("t1", &signer(), &ctx, &qs);
    let kinds: Vec<(&str, &str)> = dialog
        .dialog
        .elements
        .iter()
        .map(|e| (e.name.as_str(), e.r#type.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [("q0o0", "bool"), ("q0o1", "bool"), ("q0other", "text")]
    );
    assert!(dialog
        .dialog
        .elements
        .iter()
        .all(|e| e.display_name.chars().count() <= 24));
    assert!(dialog.dialog.title.chars().count() <= card::DIALOG_TITLE_MAX);
    // Both checked, in the options' order, comma-joined; a free answer joins them.
    let got = dialog_answers(&qs, &json!({"q0o1": true, "q0o0": true, "q0other": null}));
    assert_eq!(got, Ok(vec![(qs[0].text.clone(), "Blue, Red @all".into())]));
    let got = dialog_answers(&qs, &json!({"q0o1": true, "q0other": " Green "}));
    assert_eq!(
        got,
        Ok(vec![(qs[0].text.clone(), "Red @all, Green".into())])
    );
    let none = dialog_answers(&qs, &json!({"q0o0": false})).unwrap_err();
    assert!(none.contains_key("q0other"));
}

#[test]
fn a_single_choice_dialog_takes_the_select_or_the_free_answer() {
    let mut input = ask(false);
    input["questions"].as_array_mut().unwrap().push(
        json!({"question": "Size?", "header": "", "options": [{"label": "S"}, {"label": "L"}]}),
    );
    let qs = parsed(&input);
    // Two questions: no answer buttons, one dialog.
    let att = question_attachment(&target(), &signer(), &qs);
    assert_eq!(att.actions.len(), 1);
    let got = dialog_answers(&qs, &json!({"q0": "o1", "q1": "o0", "q1other": "XL"}));
    assert_eq!(
        got,
        Ok(vec![
            (qs[0].text.clone(), "Red @all".into()),
            ("Size?".into(), "XL".into())
        ])
    );
    // A forged value is no option: the question stays unanswered.
    let err = dialog_answers(&qs, &json!({"q0": "o9", "q1": "o0"})).unwrap_err();
    assert_eq!(err.keys().collect::<Vec<_>>(), ["q0other"]);
}

#[test]
fn answers_join_the_input_as_the_cli_expects() {
    let input = ask(false);
    let out = answered_input(
        &input,
        &[("Which color should we use?".into(), "Blue".into())],
    );
    assert_eq!(
        out["answers"],
        json!({"Which color should we use?": "Blue"})
    );
    assert_eq!(out["questions"], input["questions"]);
}

#[test]
fn plan_cards_show_the_plan_and_three_buttons() {
    let att = plan_attachment(&target(), &signer(), Some("# Plan\n1. Write hello.txt"));
    let ids: Vec<&str> = att.actions.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["planstart", "planacceptedits", "plankeep"]);
    assert!(att.text.contains("1. Write hello.txt"));
    let long = "x".repeat(PLAN_SHOWN_MAX + 10);
    let att = plan_attachment(&target(), &signer(), Some(&long));
    assert!(att.text.contains("plan.md") && att.text.chars().count() < PLAN_SHOWN_MAX + 200);
    let none = plan_attachment(&target(), &signer(), None);
    assert!(none.text.contains("no plan"));
    for a in [
        "planstart",
        "planacceptedits",
        "plankeep",
        "answer",
        "q0o1",
        "q12o3",
    ] {
        let action = ApprovalAction::from_id(a).unwrap();
        assert_eq!(action.id(), a);
    }
    for bad in ["q01o1", "qo1", "q1o", "q1o256", "q-1o2", "q1o2x"] {
        assert_eq!(ApprovalAction::from_id(bad), None, "{bad}");
    }
}

#[test]
fn decided_lines_say_who_answered_what() {
    let line = card::decision_line(&card::Decision::Answered {
        by: "alice".into(),
        at: 3600,
        answers: vec![("Color?".into(), "Blue, Red".into())],
    });
    assert!(
        line.contains("@alice") && line.contains("Color?: **Blue, Red**"),
        "{line}"
    );
    let line = card::decision_line(&card::Decision::Plan {
        by: "bob".into(),
        at: 0,
        outcome: PlanOutcome::KeepPlanning {
            feedback: "Add\ntests".into(),
        },
    });
    assert!(line.contains("keep planning: Add tests"), "{line}");
    let line = card::decision_line(&card::Decision::Plan {
        by: "bob".into(),
        at: 0,
        outcome: PlanOutcome::AcceptEdits,
    });
    assert!(line.contains("edits are accepted"), "{line}");
}

#[test]
fn answering_is_approving_and_keeping_the_plan_is_denying() {
    use crate::chat::authz::Action;
    for button in [
        ApprovalAction::Answer {
            question: 0,
            option: 1,
        },
        ApprovalAction::AnswerInDialog,
        ApprovalAction::PlanStart,
        ApprovalAction::PlanAcceptEdits,
    ] {
        assert_eq!(Action::of_click(button), Action::Approve, "{button:?}");
    }
    assert_eq!(
        Action::of_click(ApprovalAction::PlanKeep),
        Action::DenyWithReason
    );
    assert_eq!(
        Action::of_dialog(ApprovalAction::AnswerInDialog),
        Action::Approve
    );
    assert_eq!(
        Action::of_dialog(ApprovalAction::PlanKeep),
        Action::SubmitDenyReason
    );
}

/// What the model writes into a question or a plan notifies no one and shows no link or image,
/// on the card (the server finds mentions in attachments) and in the dialog (current servers
/// render help texts as markdown); what goes back to the CLI is the model's own text.
#[test]
fn model_text_on_cards_and_dialogs_mentions_no_one_and_links_nothing() {
    let input = json!({"questions": [{
        "question": "Should @bob review? [safe](https://evil.example)", "header": "Review",
        "multiSelect": true,
        "options": [{"label": "@qa-team", "description": "![x](https://evil.example/p.png)"},
                    {"label": "No", "description": "ask @alice"}]
    }]});
    let qs = parsed(&input);
    let att = question_attachment(&target(), &signer(), &qs);
    let ctx = signer().verify(&context(&att.actions[0]), NOW).unwrap();
    let dialog = answer_dialog("t1", &signer(), &ctx, &qs);
    let mut shown_texts = vec![att.text.clone()];
    for e in &dialog.dialog.elements {
        shown_texts.extend([
            e.display_name.clone(),
            e.help_text.clone(),
            e.placeholder.clone(),
        ]);
    }
    for text in &shown_texts {
        for live in ["@bob", "@qa-team", "@alice", "](https://"] {
            assert!(!text.contains(live), "{live} in {text:?}");
        }
    }
    assert!(att.text.contains("bob") && att.text.contains("qa-team"));
    let plan = plan_attachment(
        &target(),
        &signer(),
        Some("ask @carol\n![i](https://e.x/i.png)"),
    );
    assert!(
        !plan.text.contains("@carol") && !plan.text.contains("](https://"),
        "{}",
        plan.text
    );
    // The answer the CLI gets is the model's label.
    let got = dialog_answers(&qs, &json!({"q0o0": true}));
    assert_eq!(got, Ok(vec![(qs[0].text.clone(), "@qa-team".into())]));
}

/// The server counts a dialog element's limits in bytes: a question in a script of multi-byte
/// characters is cut to fit them, on a character boundary, or OpenInteractiveDialog fails.
#[test]
fn dialog_fields_fit_the_servers_byte_limits() {
    let long = "質問".repeat(60);
    let input = json!({"questions": [
        {"question": long, "header": "色を選んでください", "multiSelect": true,
         "options": [{"label": "青い色".repeat(20), "description": "落ち着いた".repeat(30)}]},
        {"question": long, "header": "大きさ", "multiSelect": false,
         "options": [{"label": "小さい".repeat(40), "description": ""}]}
    ]});
    let qs = parsed(&input);
    let ctx = ActionContext {
        session_id: "s1".into(),
        request_id: "r1".into(),
        action: ApprovalAction::AnswerInDialog,
        expires_at: NOW + 600,
    };
    let dialog = answer_dialog("t1", &signer(), &ctx, &qs);
    for e in &dialog.dialog.elements {
        // model/integration_action.go: DialogElementDisplayNameMaxLength, HelpTextMaxLength,
        // BoolMaxLength (a bool's placeholder), TextMaxLength (a text's placeholder).
        assert!(
            e.display_name.len() <= 24,
            "{:?}: {}",
            e.display_name,
            e.display_name.len()
        );
        assert!(
            e.help_text.len() <= 150,
            "{:?}: {}",
            e.help_text,
            e.help_text.len()
        );
        assert!(e.placeholder.len() <= 150, "{:?}", e.placeholder);
        assert!(e.display_name.ends_with('…') || e.display_name.len() < 24);
    }
    assert!(dialog.dialog.elements[0].help_text.ends_with('…'));
    assert!(dialog.dialog.elements[2].help_text.ends_with('…'));
}
