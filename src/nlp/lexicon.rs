pub struct Lexicon;
impl Lexicon {
    pub fn embedded() -> Self {
        Self
    }
}
