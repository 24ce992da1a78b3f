use super::LanguageInfo;
pub fn identify(_body: &str, _declared: Option<&str>) -> LanguageInfo {
    LanguageInfo {
        code: "en".into(),
        confidence: 1.0,
        supported: true,
    }
}
