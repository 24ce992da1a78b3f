pub struct KnowledgeBase;
impl KnowledgeBase {
    pub fn embedded() -> Self {
        Self
    }
}
