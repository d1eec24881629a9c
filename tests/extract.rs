//! The extractor on hostile pages: huge, deeply nested, binary, empty. Each gives a result or a
//! clear "no article" without a panic or a stack overflow (tests run on 2 MiB thread stacks, like
//! the blocking pool that runs extraction in the daemon).

use feedmill::extract::{Extractor, SiteRules, Step};
use url::Url;

fn extractor() -> Extractor {
    Extractor::new(SiteRules::new(&[]).unwrap())
}

fn url() -> Url {
    Url::parse("https://news.example/story").unwrap()
}

const PARAGRAPH: &str = "The report, published on Tuesday, describes in detail how the new rules will work, and what they change for readers.";

#[test]
fn a_five_megabyte_page_is_extracted() {
    let body: String = (0..40_000).map(|i| format!("<p>{i}. {PARAGRAPH}</p>")).collect();
    let page = format!("<html><body><nav><a href=/>Home</a></nav><article>{body}</article></body></html>");
    assert!(page.len() > 5_000_000);
    let article = extractor().extract(&page, &url()).article.expect("an article");
    assert_eq!(article.step, Step::Generic);
    assert!(article.text.contains("39999. The report"));
    assert!(!article.text.contains("Home"));
}

#[test]
fn a_hundred_thousand_nested_divs_neither_overflow_nor_stall() {
    let page = format!(
        "<html><body>{}<p>{PARAGRAPH}</p><p>{PARAGRAPH}</p>{}</body></html>",
        "<div>".repeat(100_000),
        "</div>".repeat(100_000)
    );
    let article = extractor().extract(&page, &url()).article.expect("an article");
    assert!(article.text.contains("The report, published on Tuesday"));
    // The same with unclosed inline elements and nested tables.
    for deep in [
        format!("<html><body>{}<p>{PARAGRAPH}</p></body></html>", "<b>".repeat(100_000)),
        format!(
            "<html><body>{}<p>{PARAGRAPH}</p>{}</body></html>",
            "<table><tr><td>".repeat(30_000),
            "</td></tr></table>".repeat(30_000)
        ),
        format!("<html><body>{}<p>{PARAGRAPH}</p></body></html>", "<a href=x>".repeat(100_000)),
    ] {
        let _ = extractor().extract(&deep, &url());
    }
}

#[test]
fn binary_garbage_and_empty_documents_yield_no_article() {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let garbage: Vec<u8> = (0..200_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let text = String::from_utf8_lossy(&garbage);
    assert!(extractor().extract(&text, &url()).article.is_none());
    assert!(extractor().extract("", &url()).article.is_none());
    assert!(extractor().extract("<html></html>", &url()).article.is_none());
}

/// Built-in rules for other Ukrainian newsrooms, on pages shaped like the public evidence their
/// rule files cite.
#[test]
fn built_in_rules_for_ukrinform_and_pravda() {
    let ukrinform = r#"<html><body><header><nav>Menu</nav></header><article><h1>Уряд ухвалив рішення</h1>
        <div class="newsText"><p>Кабінет Міністрів ухвалив рішення про нову програму підтримки громад.</p>
        <aside>Реклама</aside><section class="read"><a href="/x">Читайте також: інша новина</a></section>
        <p>Про це повідомили в пресслужбі уряду.</p><img class="pixel" src="https://t.example/p.gif"></div></article>
        <footer>© Укрінформ</footer></body></html>"#;
    let url = Url::parse("https://www.ukrinform.ua/rubric-polytics/1.html").unwrap();
    let article = extractor().extract(ukrinform, &url).article.expect("an article");
    assert_eq!(article.step, Step::Rule);
    assert_eq!(article.meta.title.as_deref(), Some("Уряд ухвалив рішення"));
    assert!(article.text.contains("нову програму") && article.text.contains("пресслужбі уряду"));
    assert!(!article.text.contains("Читайте також") && !article.text.contains("Реклама"));
    assert!(!article.html.contains("t.example") && !article.text.contains("Menu"));

    let pravda = r#"<html><head><meta property="og:image" content="https://img.pravda.com/og.jpg"></head><body>
        <div class="main_menu">Новини</div><article class="post"><h1>Новина дня</h1>
        <img class="post_photo_news_img" src="//img.pravda.com/images/news/lead.jpg">
        <div class="post_text"><p>Перший абзац новини з деталями події.</p>
        <div class="image-box"><img src="//img.pravda.com/images/news/inline.jpg"></div>
        <p>Другий абзац новини.</p></div><div class="post_tags"><a>Теги</a></div></article></body></html>"#;
    let url = Url::parse("https://www.pravda.com.ua/news/2021/06/24/7298338/").unwrap();
    let article = extractor().extract(pravda, &url).article.expect("an article");
    assert_eq!(article.step, Step::Rule);
    assert_eq!(article.text, "Перший абзац новини з деталями події.\nДругий абзац новини.");
    assert!(article.html.contains("https://img.pravda.com/images/news/inline.jpg"));
    assert_eq!(article.meta.image.as_deref(), Some("https://img.pravda.com/images/news/lead.jpg"));
}

#[test]
fn json_ld_article_body_is_used_when_the_page_shows_only_a_teaser() {
    let body = format!("{PARAGRAPH}\n{PARAGRAPH} Second.\n{PARAGRAPH} Third <b>&</b> last.");
    let ld = serde_json::json!({
        "@context": "https://schema.org",
        "@type": "NewsArticle",
        "headline": "Rules explained",
        "author": {"@type": "Person", "name": "Olena Petrenko"},
        "datePublished": "2026-11-20T09:00:00+02:00",
        "dateModified": "2026-11-20T10:30:00+02:00",
        "keywords": ["Kyiv", "Rules"],
        "inLanguage": "uk",
        "image": ["https://cdn.news.example/lead.jpg"],
        "articleBody": body,
    });
    // A script-rendered page: the visible HTML holds one teaser line.
    let page = format!(
        r#"<html lang="en"><head><script type="application/ld+json">{ld}</script></head>
        <body><div id="app"><p>Loading the story about rules…</p></div></body></html>"#
    );
    let article = extractor().extract(&page, &url()).article.expect("an article");
    assert_eq!(article.step, Step::Structured);
    assert_eq!(article.text.lines().count(), 3);
    assert!(article.html.contains("<p>") && article.html.contains("Third &lt;b&gt;&amp;&lt;/b&gt; last."));
    assert_eq!(article.meta.title.as_deref(), Some("Rules explained"));
    assert_eq!(article.meta.authors, vec!["Olena Petrenko"]);
    assert_eq!(article.meta.updated.as_deref(), Some("2026-11-20T10:30:00+02:00"));
    assert_eq!(article.meta.tags, vec!["Kyiv", "Rules"]);
    assert_eq!(article.meta.language.as_deref(), Some("uk"), "JSON-LD before <html lang>");
    assert_eq!(article.meta.image.as_deref(), Some("https://cdn.news.example/lead.jpg"));

    // When the page shows the whole article, its markup wins over JSON-LD's plain text.
    let full = format!(
        r#"<html><head><script type="application/ld+json">{ld}</script></head><body><article>
        <h2>Subhead</h2><p>{PARAGRAPH}</p><p>{PARAGRAPH} Second.</p><p>{PARAGRAPH} Third & last.</p>
        </article></body></html>"#
    );
    let article = extractor().extract(&full, &url()).article.expect("an article");
    assert_eq!(article.step, Step::Generic);
    assert!(article.text.contains("Subhead"));

    // A truncated articleBody is never the full text.
    let teaser = ld.to_string().replace("last.", "last…");
    let page = page.replace(&ld.to_string(), &teaser);
    let article = extractor().extract(&page, &url()).article;
    assert!(article.is_none_or(|a| a.step != Step::Structured));
}

#[test]
fn a_page_shown_only_without_scripts_is_read_from_its_noscript() {
    // A forum's crawler view: an empty mount point for the script, the posts in <noscript>.
    let posts = format!(
        "<div class=topic><div class=post><p>{PARAGRAPH}</p><p>A reply, agreeing, at length.</p></div></div>"
    );
    let page = format!(
        "<html><body><div id=app></div><noscript>{}{posts}</noscript></body></html>",
        " ".repeat(2048)
    );
    let article = extractor().extract(&page, &url()).article.expect("an article");
    assert!(article.text.contains("The report, published on Tuesday"), "{}", article.text);
    // A page that does have an article ignores its <noscript>, and nested <noscript>s are read
    // once, not recursively.
    let page = format!(
        "<html><body><p>{PARAGRAPH}</p><noscript>{}<p>Enable JavaScript.</p></noscript></body></html>",
        "<noscript>".repeat(100_000)
    );
    let article = extractor().extract(&page, &url()).article.expect("an article");
    assert!(!article.text.contains("Enable JavaScript"), "{}", article.text);
    let page = format!(
        "<html><body><noscript>{}<p>{PARAGRAPH}</p></noscript></body></html>",
        "<noscript>".repeat(100_000)
    );
    let _ = extractor().extract(&page, &url());
}
