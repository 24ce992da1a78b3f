//! What is, and is not, part of a name.
//!
//! The tagger learnt its spans from Reuters wire copy, where a name is a clean run of capitalised words. Feeds
//! are messier: commas stripped to double spaces run two names together ("Mick Mulvaney  Trump"), a capitalised
//! sentence opener or a month sits next to a name ("Accordingly Trump", "January Trump"), titles and party
//! words come before it ("Sen.", "Democrat Hillary Clinton"), compounds name a place inside an adjective
//! ("Paris-based"), and articles in other languages open names with their function words ("Selon", "du"). The
//! word lists here say which words are never part of a canonical name; [`crate::entities`] uses them to trim,
//! split and drop spans, and the identity evaluation counts names that still hold one.

use std::collections::HashSet;
use std::sync::OnceLock;

/// A word list as a set, built on first use: the lists are consulted for every word of every span.
type WordSet = OnceLock<HashSet<&'static str>>;

/// `word` (compared lowercase, without a trailing dot) is one of the whitespace-separated words of `list`.
fn listed(set: &'static WordSet, list: &'static str, word: &str) -> bool {
    let set = set.get_or_init(|| list.split_whitespace().collect());
    let w = word.trim_end_matches('.');
    if w.is_empty() {
        false
    } else if w.chars().any(char::is_uppercase) {
        set.contains(w.to_lowercase().as_str())
    } else {
        set.contains(w)
    }
}

/// Titles, honorifics and offices that stand before a personal name ("Sen. John McCain", "Prime Minister Nikol
/// Pashinyan"). They are kept on the mention as its `title`, not in the name.
const TITLES: &str = "\
    mr mrs ms miss mx dr prof professor pres president sen senator rep representative congressman \
    congresswoman gov governor gen general lt col colonel capt captain sgt sergeant maj major adm admiral \
    brig cmdr commander judge justice chancellor king queen prince princess pope sheikh sheik emir sultan \
    ayatollah mayor minister premier secretary ambassador amb chairman chairwoman chairperson chair ceo \
    director commissioner speaker attorney sir dame lord rabbi imam cardinal bishop archbishop \
    reverend rev pastor father officer detective sheriff coach chief hon councilman councilwoman \
    councillor lawmaker leader spokesman spokeswoman spokesperson candidate nominee dictator tsar czar \
    crown emperor empress";

/// Words that qualify a title ("Vice President", "House Speaker", "Secretary of State", "Foreign Minister",
/// "former Gov."): part of the title when a title word is among them.
const TITLE_QUALIFIERS: &str = "\
    vice deputy acting former first prime foreign defence defense finance interior justice state \
    treasury homeland security energy health labor labour education commerce agriculture transportation \
    house senate majority minority supreme chief assistant associate special national district federal \
    circuit superior high grand presidential us u.s uk u.k of the for and";

/// Party and camp words that describe a person in front of the name ("Democrat Hillary Clinton", "Republican
/// Sen. Lindsey Graham", "Crooked Hillary").
const ROLE_WORDS: &str = "\
    democrat democratic republican gop conservative liberal progressive labour tory socialist independent \
    libertarian crooked";

/// Words that a sentence, a headline or a wire dateline capitalises next to a name but that never start one:
/// adverbs and conjunctions, auxiliaries, prepositions, months and days, reporting verbs.
const NOT_NAME_STARTS: &str = "\
    accordingly however meanwhile moreover furthermore nevertheless nonetheless still yet also instead \
    likewise similarly additionally indeed thus hence therefore then now today yesterday tomorrow tonight \
    later earlier recently finally eventually ultimately unlike like despite although though while \
    whereas because since after before when whenever where why how what who whom whose which if unless \
    until as so but and or nor with without by from to in on at about under over against between among \
    during through per via including even only just perhaps maybe certainly clearly obviously \
    apparently reportedly allegedly according does did do is are was were would could should \
    shall might must has have had not no yes dear thanks sorry please hey oh well says told \
    asked here there this that these those every each both all many most some several other another \
    when's why's it's let's sources ask tell meet watch read see see: breaking exclusive update \
    january february march april june july august september october november december feb \
    aug sept oct nov dec monday tuesday wednesday thursday friday saturday sunday";

/// Words of [`NOT_NAME_STARTS`] that do open a few organisations' names ("All Progressives Congress", "No
/// Labels"): stripped from those only at a sentence start.
const SOMETIMES_NAME_STARTS: &str = "all no every each both many most some several other another";

/// Prepositions and conjunctions of other languages that never open a name ("Selon" is French for "according
/// to").
const FOREIGN_FUNCTION_WORDS: &str = "\
    selon avec pour dans sur par und mit für fur nach laut según segun con para pelo pela em et ou";

/// Articles and contractions of other languages: they open names capitalised ("Las Vegas", "Le Pen", "Der
/// Spiegel"), never lowercase ("du Brésil", "der Regierung"). Name particles that do open a surname lowercase
/// ("de", "van", "von", "di", "da") are not here.
const FOREIGN_ARTICLES: &str = "\
    du des der die das dem den la le les el los las il gli della dei degli dos";

/// Second halves of compounds that turn a place into an adjective ("Paris-based", "US-led", "Moscow-backed").
const COMPOUND_HEADS: &str = "\
    based led backed born bred funded owned run made supported sponsored allied linked focused \
    headquartered installed controlled dominated held brokered friendly leaning aligned centric \
    registered listed";

/// A title or honorific ("Sen.", "President", "Dr").
pub fn is_title(word: &str) -> bool {
    static SET: WordSet = OnceLock::new();
    listed(&SET, TITLES, word)
}

/// A word that may join a title ("Vice", "House", "of").
pub fn is_title_qualifier(word: &str) -> bool {
    static SET: WordSet = OnceLock::new();
    listed(&SET, TITLE_QUALIFIERS, word)
}

/// A party or camp word used before a name ("Democrat", "GOP").
pub fn is_role_word(word: &str) -> bool {
    static SET: WordSet = OnceLock::new();
    listed(&SET, ROLE_WORDS, word)
}

/// A capitalised word that can stand next to a name but never starts one ("Accordingly", "Does", "January").
pub fn never_starts_name(word: &str) -> bool {
    static SET: WordSet = OnceLock::new();
    listed(&SET, NOT_NAME_STARTS, word)
}

/// A word of [`never_starts_name`] that still opens a few organisations' names ("All", "No").
pub fn sometimes_starts_name(word: &str) -> bool {
    static SET: WordSet = OnceLock::new();
    listed(&SET, SOMETIMES_NAME_STARTS, word)
}

/// A word of another language that cannot open a name written this way: a preposition in any case, an
/// article in lowercase ("Selon", "du", but not "Le" of "Le Pen").
pub fn is_foreign_function_word(word: &str) -> bool {
    let lowercase = word.chars().next().is_some_and(char::is_lowercase);
    static PREPOSITIONS: WordSet = OnceLock::new();
    static ARTICLES: WordSet = OnceLock::new();
    listed(&PREPOSITIONS, FOREIGN_FUNCTION_WORDS, word)
        || (lowercase && listed(&ARTICLES, FOREIGN_ARTICLES, word))
}

/// The second half of a place compound ("based" in "Paris-based").
pub fn is_compound_head(word: &str) -> bool {
    static SET: WordSet = OnceLock::new();
    listed(&SET, COMPOUND_HEADS, word)
}

/// Why a canonical name is not clean, for the identity evaluation: it holds a title, opens with a word that
/// never starts a name or a foreign function word, or is a place compound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NameFlaw {
    Title,
    Opener,
    Compound,
    FunctionWord,
}

impl NameFlaw {
    pub const ALL: [NameFlaw; 4] = [
        NameFlaw::Title,
        NameFlaw::Opener,
        NameFlaw::Compound,
        NameFlaw::FunctionWord,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NameFlaw::Title => "title",
            NameFlaw::Opener => "opener",
            NameFlaw::Compound => "compound",
            NameFlaw::FunctionWord => "function_word",
        }
    }
}

/// The flaws of a canonical person name (titles count only for people: "General Motors" is a fine company).
pub fn name_flaws(name: &str, is_person: bool) -> Vec<NameFlaw> {
    let words: Vec<&str> = name.split_whitespace().collect();
    let mut flaws = Vec::new();
    let Some(first) = words.first() else {
        return flaws;
    };
    if is_person && words.len() > 1 && (is_title(first) || is_role_word(first)) {
        flaws.push(NameFlaw::Title);
    }
    let all_caps = first.chars().any(char::is_alphabetic) && !first.chars().any(char::is_lowercase);
    if words.len() > 1 && !all_caps && never_starts_name(first) {
        flaws.push(NameFlaw::Opener);
    }
    let compound = words.iter().any(|w| {
        w.split_once('-')
            .is_some_and(|(head, tail)| !head.is_empty() && is_compound_head(tail))
    });
    if compound {
        flaws.push(NameFlaw::Compound);
    }
    if words.len() > 1 && is_foreign_function_word(first) {
        flaws.push(NameFlaw::FunctionWord);
    }
    flaws
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_compared_without_case_or_dot() {
        assert!(is_title("Sen."));
        assert!(is_title("PRESIDENT"));
        assert!(!is_title("Trump"));
        assert!(never_starts_name("Accordingly"));
        assert!(is_foreign_function_word("Selon"));
        assert!(!is_foreign_function_word("von"));
        assert!(is_foreign_function_word("du"));
        assert!(!is_foreign_function_word("Le"));
    }

    #[test]
    fn flaws_of_names() {
        assert_eq!(
            name_flaws("Pres. Trump", true),
            vec![NameFlaw::Title],
            "a title in a person's name"
        );
        assert!(name_flaws("General Motors", false).is_empty());
        assert_eq!(
            name_flaws("Accordingly Trump", true),
            vec![NameFlaw::Opener]
        );
        assert_eq!(name_flaws("Paris-based", false), vec![NameFlaw::Compound]);
        assert_eq!(name_flaws("du Brésil", true), vec![NameFlaw::FunctionWord]);
        assert!(name_flaws("Ursula von der Leyen", true).is_empty());
        assert!(name_flaws("Trump", true).is_empty());
        assert!(name_flaws("Las Vegas", false).is_empty());
        assert!(name_flaws("AT & T", false).is_empty());
    }
}
