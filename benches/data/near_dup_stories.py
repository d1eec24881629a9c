# Builds benches/data/near_dup.json: the labelled near-duplicate set (see BENCHMARKS.md).
# Each story is written here as sentences, with the pieces its variants need; the variants are
# made the way republishers make them. Run: python3 benches/data/near_dup_stories.py
import json, pathlib

STORIES = [
 dict(id="kharkiv-strike", lang="en",
  s=["Russian forces attacked the Kharkiv region overnight with drones and missiles, the regional governor said on Tuesday.",
     "A power substation and several residential buildings were damaged in the city's Kyivskyi district.",
     "Three people were injured, including a 12-year-old girl, and all of them were taken to hospital.",
     "Emergency crews worked through the night to restore electricity to about twelve thousand households.",
     "The governor urged residents to stay in shelters while the air-raid alert lasted.",
     "Ukraine's air force said it had shot down 34 of the 47 drones launched overnight across the country."],
  lead="Three people, among them a child, were hurt when drones and missiles hit Kharkiv overnight, local officials reported.",
  extra=["Kharkiv has been struck almost daily since the start of the month.", "The city's mayor said schools would switch to online lessons on Wednesday."],
  other=["Power has been restored to most of Kharkiv after repairs to a substation damaged last week, the regional energy company said on Wednesday.",
         "Engineers were still working on lines to villages north of the city near the Russian border, where shelling continued.",
         "The company asked customers to limit the use of heaters and washing machines in the evening hours.",
         "Repair crews have fixed more than 200 damaged lines in the region since the beginning of autumn.",
         "Officials said a new backup generator would be installed at the substation by the end of the month."]),
 dict(id="budget-vote", lang="en",
  s=["Ukraine's parliament approved the state budget for next year on Thursday, with 257 lawmakers voting in favour.",
     "More than half of all spending will go to defence and security, the finance minister told the chamber.",
     "The budget plans a deficit of about 18 percent of GDP, to be covered largely by international partners.",
     "Spending on schools and hospitals rises slightly, while most other ministries face cuts.",
     "The president is expected to sign the law before the end of the month."],
  lead="Lawmakers in Kyiv passed next year's budget on Thursday, putting defence first and relying on foreign aid to close a large gap.",
  extra=["Opposition deputies criticised the cuts to regional development programmes."],
  other=["The finance ministry said on Monday that foreign partners had covered the budget gap for December, after a delayed tranche arrived.",
         "The payment of 1.5 billion dollars came from a loan programme agreed with the European Union earlier this year.",
         "Officials said pensions and salaries of teachers and doctors would be paid on time.",
         "The ministry expects tax revenues to grow next year as businesses adapt to power outages.",
         "Economists warned that the country remains heavily dependent on external financing."]),
 dict(id="grain-corridor", lang="en",
  s=["Ships carried a record 9.2 million tonnes of grain and other cargo from Ukraine's Black Sea ports in October, the infrastructure ministry said.",
     "Most of the cargo left from the ports of Odesa, Chornomorsk and Pivdennyi.",
     "The corridor has worked without a pause despite repeated Russian strikes on port infrastructure.",
     "Corn and wheat made up the largest share of exports, followed by sunflower oil and iron ore.",
     "The ministry said more than 150 vessels were waiting to enter the ports at the end of the month."],
  lead="October was the busiest month yet for Ukraine's sea corridor, with 9.2 million tonnes shipped from its Black Sea ports.",
  extra=["Insurance costs for ships calling at Ukrainian ports have fallen by about a third since the spring.", "Traders expect volumes to stay high until the end of the year."],
  other=["A Russian drone strike damaged grain silos and a warehouse at the port of Izmail on the Danube overnight, regional officials said.",
         "Nobody was hurt, but about 2,000 tonnes of grain were destroyed in the fire that followed.",
         "The Danube ports have become an important route for exports to Romania and further into Europe.",
         "Port workers cleared the debris in the morning and loading resumed by noon.",
         "Officials said air defence had shot down most of the drones aimed at the region."]),
 dict(id="grants-business", lang="uk",
  s=["Кабінет Міністрів затвердив нову програму підтримки малого бізнесу в прифронтових громадах, повідомив прем'єр-міністр у середу.",
     "Підприємці зможуть отримати гранти до 500 тисяч гривень на відновлення виробництва.",
     "Також передбачено пільгові кредити під 5 відсотків на закупівлю обладнання та генераторів.",
     "Заявки прийматимуть через портал Дія до кінця року.",
     "На програму з державного бюджету виділено 2 мільярди гривень."],
  lead="Уряд дасть гранти та дешеві кредити малому бізнесу, який працює поблизу лінії фронту.",
  extra=["Минулого року схожою програмою скористалися понад три тисячі підприємців.", "У Мінекономіки пообіцяли розглядати заявки протягом десяти днів."],
  other=["Уряд продовжив програму доступних кредитів 5-7-9 для аграріїв до кінця наступного року, повідомило Міністерство економіки.",
         "Фермери зможуть брати кредити на посівну та закупівлю добрив під знижений відсоток.",
         "Найбільше кредитів цього року отримали господарства з Полтавської та Вінницької областей.",
         "Банки-учасники програми видали понад 40 тисяч кредитів від початку року.",
         "У міністерстві зазначили, що умови для малих фермерів стануть ще м'якшими."]),
 dict(id="kyiv-blackout", lang="uk",
  s=["У Києві та області в четвер запроваджують графіки погодинних відключень електроенергії, повідомили в Укренерго.",
     "Причиною стали пошкодження енергетичної інфраструктури внаслідок нічної масованої атаки.",
     "Споживачів просять перевіряти графіки на сайтах обленерго та не вмикати одночасно потужні прилади.",
     "Критична інфраструктура, зокрема лікарні та водоканали, живиться за окремими схемами.",
     "В енергокомпанії обіцяють повернутися до звичайного режиму, щойно завершаться ремонтні роботи."],
  lead="Укренерго через пошкодження після нічної атаки вводить у четвер графіки відключень світла для Києва та області.",
  extra=["Ремонтні бригади працюють цілодобово.", "Мешканцям радять заздалегідь зарядити павербанки."],
  other=["У Львові в суботу відкрили ще десять пунктів незламності, де можна зігрітися та зарядити телефон, повідомив міський голова.",
         "Пункти працюватимуть цілодобово під час тривалих відключень електроенергії.",
         "Кожен пункт має генератор, запас води та доступ до інтернету.",
         "Адреси пунктів опубліковані на сайті міської ради та в застосунку міста.",
         "Міська влада закликала мешканців зберігати спокій і економно споживати електроенергію."]),
 dict(id="exchange-returns", lang="uk",
  s=["Україна повернула додому 95 захисників у результаті чергового обміну полоненими, повідомив Координаційний штаб.",
     "Серед звільнених військові ЗСУ, Національної гвардії та прикордонники, які захищали Маріуполь і Херсонщину.",
     "Наймолодшому з них 21 рік, найстаршому 58 років.",
     "Обмін відбувся за посередництва Об'єднаних Арабських Еміратів.",
     "Усі звільнені пройдуть медичне обстеження та реабілітацію."],
  lead="Ще 95 українських військових повернулися з полону — це вже п'ятдесятий обмін від початку повномасштабної війни.",
  extra=["Рідні чекали на звільнених біля кордону з прапорами та квітами."],
  other=["Координаційний штаб провів зустріч із родинами зниклих безвісти військових з Донеччини, повідомили у відомстві.",
         "Представники штабу розповіли, як подати заяву та здати ДНК для пошуку рідних.",
         "На зустріч прийшли понад двісті людей з різних областей.",
         "Також родини отримали консультації юристів щодо виплат і пільг.",
         "Наступна зустріч запланована в Дніпрі наприкінці місяця."]),
 dict(id="metro-kyiv", lang="ru",
  s=["В Киеве открыли после ремонта участок синей линии метро между станциями Демиевская и Выдубичи, сообщила городская администрация.",
     "Движение на участке было закрыто почти год из-за повреждения тоннеля.",
     "Ремонт обошелся городу в 1,3 миллиарда гривен.",
     "Поезда будут ходить с интервалом пять минут в часы пик.",
     "Наземные автобусы, которые заменяли метро, будут работать до конца недели."],
  lead="Киевляне снова могут ездить на метро от Демиевской до Выдубичей — участок синей линии восстановили после аварии.",
  extra=["Пассажиры встретили первый поезд аплодисментами."],
  other=["Киевская администрация объявила тендер на строительство метро на Виноградарь, стоимость работ оценивают в 9 миллиардов гривен.",
         "Первую станцию планируют открыть через три года.",
         "Проект предусматривает две новые станции и депо.",
         "Жители района ждут метро уже более десяти лет.",
         "Часть финансирования город рассчитывает получить от международных банков."]),
 dict(id="train-poland", lang="pl",
  s=["Od grudnia pociągi Intercity pojadą bezpośrednio z Przemyśla do Kijowa, poinformowało ministerstwo infrastruktury.",
     "Podróż ma trwać około dziesięciu godzin, a bilety będzie można kupić w obu krajach.",
     "Nowe połączenie ma ułatwić podróże uchodźcom, którzy odwiedzają rodziny na Ukrainie.",
     "Pociągi będą kursować codziennie, z odprawą graniczną w wagonach.",
     "Ministerstwo zapowiada kolejne połączenia do Lwowa i Odessy w przyszłym roku."],
  lead="Bezpośredni pociąg z Przemyśla do Kijowa ruszy w grudniu, podróż zajmie około dziesięciu godzin.",
  extra=["Bilety trafią do sprzedaży w przyszłym tygodniu."],
  other=["PKP Intercity kupi dwadzieścia nowych lokomotyw do obsługi tras na wschodzie kraju, poinformowała spółka we wtorek.",
         "Umowa z producentem ma wartość ponad miliarda złotych.",
         "Pierwsze lokomotywy trafią na tory w przyszłym roku.",
         "Spółka chce w ten sposób skrócić czas przejazdu do Lublina i Przemyśla.",
         "Związkowcy chwalą inwestycję, ale pytają o nowych maszynistów."]),
]

# Daily reports written from one template: the same story shape, different facts. They are
# different stories and must stay apart.
TEMPLATED = [
 ("airdefence-1", "uk", "У ніч на 24 листопада Росія атакувала Україну 60 ударними дронами та двома ракетами, повідомили Повітряні сили. Сили ППО знешкодили 45 дронів над Київською, Черкаською та Полтавською областями. Ще 12 дронів локаційно втрачені. Внаслідок атаки пошкоджено склад у Білій Церкві, постраждалих немає."),
 ("airdefence-2", "uk", "У ніч на 25 листопада Росія атакувала Україну 72 ударними дронами та чотирма ракетами, повідомили Повітряні сили. Сили ППО знешкодили 50 дронів над Одеською, Миколаївською та Херсонською областями. Ще 15 дронів локаційно втрачені. Внаслідок атаки пошкоджено портову інфраструктуру в Одесі, двоє людей поранені."),
 ("airdefence-3", "uk", "У ніч на 26 листопада Росія атакувала Україну 38 ударними дронами, повідомили Повітряні сили. Сили ППО знешкодили 31 дрон над Сумською, Харківською та Чернігівською областями. Ще 5 дронів локаційно втрачені. Внаслідок атаки пошкоджено лінію електропередачі на Сумщині, частина сіл без світла."),
 ("outage-1", "en", "Scheduled power cuts will apply in Kyiv on Friday from 8 am to 10 pm, with two queues of consumers switched off at a time, DTEK said. Consumers in queues 1 and 4 will be without electricity from 8 am to noon, and queues 2 and 5 from noon to 4 pm. The company asked residents to check their queue on its website."),
 ("outage-2", "en", "Scheduled power cuts will apply in Odesa on Saturday from 6 am to 11 pm, with three queues of consumers switched off at a time, DTEK said. Consumers in queues 3 and 6 will be without electricity from 6 am to 10 am, and queues 1 and 2 from 10 am to 2 pm. The company asked residents to check their queue on its website."),
]

BOILERPLATE = {
 "en": ("KYIV, Nov 25 (UNN) -", "Read also: Zelensky meets EU leaders in Brussels"),
 "uk": ("Київ • УНН.", "Читайте також: Зеленський зустрівся з лідерами ЄС у Брюсселі"),
 "ru": ("Киев • УНН.", "Читайте также: Зеленский встретился с лидерами ЕС в Брюсселе"),
 "pl": ("WARSZAWA, 25 listopada (PAP) -", "Czytaj także: Zełenski spotkał się z przywódcami UE w Brukseli"),
}

def text(sentences):
    return " ".join(sentences)

def main():
    docs, pairs = [], []
    def add(doc_id, lang, body):
        docs.append({"id": doc_id, "lang": lang, "text": body})
        return doc_id
    for st in STORIES:
        base = add(st["id"], st["lang"], text(st["s"]))
        pre, post = BOILERPLATE[st["lang"]]
        variants = {
            # Republished verbatim by another outlet, with its dateline and a "read also" line.
            "republished": f"{pre} {text(st['s'])} {post}",
            # The same report with sentences added at the end.
            "added": text(st["s"] + st["extra"]),
            # A different lead sentence on the same body.
            "new_lead": text([st["lead"]] + st["s"][1:]),
            # Cut for length: the last sentence dropped, the dateline added.
            "shortened": f"{pre} {text(st['s'][:-1])}",
            # Edited: two middle sentences swapped, a new lead, and an added sentence.
            "edited": text([st["lead"]] + [st["s"][2], st["s"][1]] + st["s"][3:] + st["extra"][:1]),
        }
        for kind, body in variants.items():
            v = add(f"{st['id']}~{kind}", st["lang"], body)
            pairs.append({"a": base, "b": v, "same": True, "kind": kind})
        # Variants of one story are also the same story as each other.
        pairs.append({"a": f"{st['id']}~republished", "b": f"{st['id']}~new_lead", "same": True, "kind": "variant-variant"})
        pairs.append({"a": f"{st['id']}~shortened", "b": f"{st['id']}~added", "same": True, "kind": "variant-variant"})
        # A different story on the same topic, same language, same outlet style.
        other = add(f"{st['id']}~other", st["lang"], f"{pre} {text(st['other'])} {post}")
        pairs.append({"a": base, "b": other, "same": False, "kind": "same-topic"})
        for kind in variants:
            pairs.append({"a": f"{st['id']}~{kind}", "b": other, "same": False, "kind": "same-topic"})
    for doc_id, lang, body in TEMPLATED:
        add(doc_id, lang, body)
    for family in ("airdefence", "outage"):
        members = [d for d, _, _ in TEMPLATED if d.startswith(family)]
        for i, a in enumerate(members):
            for b in members[i + 1:]:
                pairs.append({"a": a, "b": b, "same": False, "kind": "templated-report"})
    # Different stories in the same language and outlet style, across topics.
    bases = [st for st in STORIES]
    for i, a in enumerate(bases):
        for b in bases[i + 1:]:
            if a["lang"] == b["lang"]:
                pairs.append({"a": f"{a['id']}~republished", "b": f"{b['id']}~republished", "same": False, "kind": "same-outlet"})
    out = pathlib.Path(__file__).with_name("near_dup.json")
    out.write_text(json.dumps({"docs": docs, "pairs": pairs}, ensure_ascii=False, indent=1) + "\n")
    same = sum(p["same"] for p in pairs)
    print(f"{out}: {len(docs)} documents, {len(pairs)} pairs ({same} same story, {len(pairs) - same} different)")

main()
